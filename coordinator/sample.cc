#include "coordinator/sample.h"

#include <sodium.h>

#include <cstdio>

#include "base/file_util.h"
#include "crypto/secret.h"

namespace qv {

namespace fs = std::filesystem;

namespace {

Status WriteText(const fs::path& p, const std::string& text) {
  return WriteFileAtomic(p, AsBytes(text), 0644);
}

std::string ShardName(int i, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i, n);
  return buf;
}

}  // namespace

Status WriteSampleModel(const fs::path& dir, uint64_t weight_bytes, int shards) {
  EnsureSodium();
  if (shards < 1 || shards > 999) return InvalidArgument("shards must be 1..999");
  std::error_code ec;
  if (fs::exists(dir, ec)) return AlreadyExists(dir.string() + ": already exists");
  fs::create_directories(dir, ec);
  if (ec) return IoError(dir.string() + ": " + ec.message());

  QV_RETURN_IF_ERROR(WriteText(dir / "config.json",
                               "{\n  \"architectures\": [\"QvSampleForCausalLM\"],\n"
                               "  \"hidden_size\": 1024,\n  \"num_hidden_layers\": " +
                                   std::to_string(shards * 2) +
                                   ",\n  \"torch_dtype\": \"float16\",\n"
                                   "  \"vocab_size\": 32000\n}\n"));
  QV_RETURN_IF_ERROR(WriteText(dir / "generation_config.json",
                               "{\n  \"max_new_tokens\": 256,\n  \"temperature\": 0.7\n}\n"));
  std::string vocab = "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\", \"vocab\": {";
  for (int i = 0; i < 2000; ++i) {
    vocab +=
        (i ? ", " : "") + std::string("\"tok") + std::to_string(i) + "\": " + std::to_string(i);
  }
  vocab += "}}}\n";
  QV_RETURN_IF_ERROR(WriteText(dir / "tokenizer.json", vocab));

  std::string index = "{\n  \"metadata\": {\"total_size\": " + std::to_string(weight_bytes) +
                      "},\n  \"weight_map\": {\n";
  const uint64_t per_shard = weight_bytes / shards;
  Bytes buf(1 << 20);
  for (int s = 1; s <= shards; ++s) {
    const uint64_t data = s == shards ? weight_bytes - per_shard * (shards - 1) : per_shard;
    const uint64_t elems = data / 2;
    // A 1-D float16 tensor holds the bulk; an odd trailing byte goes in a U8 tensor.
    std::string name = "model.layers." + std::to_string(s - 1) + ".weight";
    std::string header = "{\"__metadata__\":{\"format\":\"pt\"},\"" + name +
                         "\":{\"dtype\":\"F16\",\"shape\":[" + std::to_string(elems) +
                         "],\"data_offsets\":[0," + std::to_string(elems * 2) + "]}";
    if (data % 2) {
      header += ",\"" + name + ".tail\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[" +
                std::to_string(elems * 2) + "," + std::to_string(data) + "]}";
    }
    header += "}";
    while (header.size() % 8) header += ' ';
    fs::path p = dir / ShardName(s, shards);
    QV_ASSIGN_OR_RETURN(auto f, File::CreateNew(p, 0644));
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(uint64_t{header.size()} >> (8 * i));
    QV_RETURN_IF_ERROR(f->WriteAll(ByteSpan(len, 8)));
    QV_RETURN_IF_ERROR(f->WriteAll(AsBytes(header)));
    for (uint64_t done = 0; done < data;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), data - done));
      randombytes_buf(buf.data(), n);
      QV_RETURN_IF_ERROR(f->WriteAll(ByteSpan(buf.data(), n)));
      done += n;
    }
    QV_RETURN_IF_ERROR(f->Sync());
    index +=
        std::string(s > 1 ? ",\n" : "") + "    \"" + name + "\": \"" + ShardName(s, shards) + "\"";
  }
  index += "\n  }\n}\n";
  QV_RETURN_IF_ERROR(WriteText(dir / "model.safetensors.index.json", index));
  return SyncDir(dir);
}

}  // namespace qv
