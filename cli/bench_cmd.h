// Measuring this machine and making inputs to measure with: `qv bench`
// (each stage and the whole pipeline, beside the limits measured in the
// same run) and `qv sample` (a synthetic safetensors model folder). Kept
// apart from main.cc, which dispatches.
#ifndef QV_CLI_BENCH_CMD_H_
#define QV_CLI_BENCH_CMD_H_

#include <CLI/CLI.hpp>
#include <string>

namespace qv {

struct BenchArgs {
  std::string size = "512MiB";
  bool json = false;
};
CLI::App* AddBenchCommand(CLI::App& app, BenchArgs& args);
int CmdBench(const BenchArgs& args);

struct SampleArgs {
  std::string out, size = "64MiB";
  int shards = 3;
};
CLI::App* AddSampleCommand(CLI::App& app, SampleArgs& args);
int CmdSample(const SampleArgs& args);

}  // namespace qv

#endif  // QV_CLI_BENCH_CMD_H_
