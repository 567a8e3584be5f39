#include "cli/bench_cmd.h"

#include <cstdio>
#include <string>

#include "base/json.h"
#include "cli/cli_util.h"
#include "coordinator/bench.h"
#include "coordinator/sample.h"

namespace qv {

CLI::App* AddBenchCommand(CLI::App& app, BenchArgs& a) {
  auto* bench =
      app.add_subcommand("bench", "Measure each stage and the whole pipeline on this machine");
  bench->add_option("--size", a.size, "artifact size for the pipeline runs")->capture_default_str();
  bench->add_flag("--json", a.json, "machine-readable output");
  return bench;
}

CLI::App* AddSampleCommand(CLI::App& app, SampleArgs& a) {
  auto* sample =
      app.add_subcommand("sample", "Generate a sample model folder (safetensors shards)");
  sample->add_option("--out", a.out, "folder to create")->required();
  sample->add_option("--size", a.size, "bytes of weights")->capture_default_str();
  sample->add_option("--shards", a.shards, "number of safetensors shards")->capture_default_str();
  return sample;
}

int CmdBench(const BenchArgs& a) {
  const std::string& size = a.size;
  const bool json = a.json;
  BenchOptions opt;
  auto bytes = ParseSize(size);
  if (!bytes.ok()) return Fail(bytes.status());
  if (*bytes < (1u << 20)) return Fail(InvalidArgument("--size must be at least 1MiB"));
  opt.pipeline_bytes = *bytes;
  if (!json)
    std::fprintf(stderr, "measuring stages and the pipeline on %s...\n",
                 FormatBytes(*bytes).c_str());
  auto r = RunBench(opt);
  if (!r.ok()) return Fail(r.status());
  if (json) {
    JsonWriter j;
    j.BeginObject().Field("cores", uint64_t(r->cores)).Key("stages").BeginArray();
    for (const auto& s : r->stages) {
      j.BeginObject().Field("name", s.name).Field("mb_per_s", s.mb_per_s).EndObject();
    }
    j.EndArray().Key("pipelines").BeginArray();
    for (const auto& p : r->pipelines) {
      j.BeginObject()
          .Field("name", p.name)
          .Field("cores", uint64_t(p.cores))
          .Field("mb_per_s", p.mb_per_s)
          .Field("limit_mb_per_s", p.limit)
          .Field("fraction_of_limit", p.mb_per_s / p.limit)
          .EndObject();
    }
    j.EndArray()
        .Field("cluster_backup_limit_mb_per_s", r->cluster_backup_limit)
        .Field("cluster_restore_limit_mb_per_s", r->cluster_restore_limit)
        .Key("certificates")
        .BeginObject()
        .Field("custodians", uint64_t(r->certificates.custodians))
        .Field("quorum", uint64_t(r->certificates.quorum))
        .Field("signatures_per_certificate", uint64_t(r->certificates.signatures))
        .Field("verified_per_s", r->certificates.certificates_per_s)
        .Field("ed25519_verifies_per_s", r->certificates.ed25519_verifies_per_s)
        .EndObject()
        .EndObject();
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  std::printf("%-48s %8s\n", "stage (one core)", "MB/s");
  for (const auto& s : r->stages) std::printf("  %-46s %8.0f\n", s.name.c_str(), s.mb_per_s);
  std::printf(
      "\n%-48s %8s %8s %9s\n",
      ("pipeline (k=" + std::to_string(opt.k) + " m=" + std::to_string(opt.m) + ", in memory)")
          .c_str(),
      "MB/s", "limit", "of limit");
  for (const auto& p : r->pipelines) {
    std::printf("  %-46s %8.0f %8.0f %8.1f%%\n", p.name.c_str(), p.mb_per_s, p.limit,
                100 * p.mb_per_s / p.limit);
  }
  std::printf("\n%-48s %8.0f\n%-48s %8.0f\n", "compute limit, backup through a cluster",
              r->cluster_backup_limit, "compute limit, restore through a cluster",
              r->cluster_restore_limit);
  const auto& c = r->certificates;
  const double bound = c.ed25519_verifies_per_s / c.signatures;
  const std::string check_name = "release certificate check, M=" + std::to_string(c.quorum) +
                                 " of " + std::to_string(c.custodians) + " (one core)";
  const std::string bound_name =
      "  bound: Ed25519 verify / " + std::to_string(c.signatures) + " signatures";
  std::printf("\n%-48s %8.0f /s  (%.1f%% of bound)\n%-48s %8.0f /s\n%-48s %8.0f /s\n",
              check_name.c_str(), c.certificates_per_s, 100 * c.certificates_per_s / bound,
              "  Ed25519 verify (one core)", c.ed25519_verifies_per_s, bound_name.c_str(), bound);
  std::printf(
      "\nlimit = cores / sum of per-byte stage costs (backup: sha file + aead + rs + n/k sha "
      "units;\n"
      "        restore: sha units + aead + sha file [+ rs decode]), measured above in this run\n");
  return 0;
}

int CmdSample(const SampleArgs& a) {
  auto bytes = ParseSize(a.size);
  if (!bytes.ok()) return Fail(bytes.status());
  Status s = WriteSampleModel(a.out, *bytes, a.shards);
  if (!s.ok()) return Fail(s);
  std::printf("wrote sample model to %s (%s of weights in %d safetensors shards)\n",
              Shown(a.out).c_str(), FormatBytes(*bytes).c_str(), a.shards);
  return 0;
}

}  // namespace qv
