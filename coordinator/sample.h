// A generated sample model folder, shaped like a Hugging Face checkpoint:
// config.json, tokenizer.json, generation_config.json, N safetensors shards
// with valid headers and random (incompressible) weights, and the shard
// index. Used by the README's main job and by tests.
#ifndef QV_COORDINATOR_SAMPLE_H_
#define QV_COORDINATOR_SAMPLE_H_

#include <filesystem>

#include "base/status.h"

namespace qv {

// Creates `dir` (must not exist) holding about `weight_bytes` of weights in
// `shards` files.
Status WriteSampleModel(const std::filesystem::path& dir, uint64_t weight_bytes, int shards);

}  // namespace qv

#endif  // QV_COORDINATOR_SAMPLE_H_
