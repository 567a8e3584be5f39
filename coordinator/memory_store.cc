#include "coordinator/memory_store.h"

#include <cstring>

#include "coordinator/local_store.h"

namespace qv {

namespace {

class MemorySink : public FragmentSink {
 public:
  explicit MemorySink(MemoryNodes::Node* node) : node_(node) {}
  const Placement& placement() const override { return node_->placement; }
  Status Append(ByteSpan unit) override {
    node_->staging.insert(node_->staging.end(), unit.begin(), unit.end());
    return Status::Ok();
  }
  Status Prepare(const std::vector<Digest>& leaves, const Share& share, const SignedManifest&,
                 int64_t /*deadline*/) override {
    leaves_ = leaves;
    share_ = share.Clone();
    return Status::Ok();
  }
  Status Publish(const CommitRecord& /*record*/) override {
    node_->fragment = std::move(node_->staging);
    node_->staging = Bytes();
    node_->leaves = std::move(leaves_);
    node_->share = std::move(share_);
    node_->published = true;
    return Status::Ok();
  }
  void Abort() override {
    node_->staging.clear();
    leaves_.clear();
  }

 private:
  MemoryNodes::Node* node_;
  std::vector<Digest> leaves_;
  std::optional<Share> share_;
};

class MemorySource : public FragmentSource {
 public:
  MemorySource(const MemoryNodes::Node* node, uint64_t unit) : node_(node), unit_(unit) {}
  const std::string& name() const override { return node_->placement.node_id; }
  uint32_t fragment() const override { return node_->placement.fragment; }
  Result<std::vector<Digest>> ReadLeaves() override { return node_->leaves; }
  Result<UnitView> ViewUnit(uint64_t stripe, MutableByteSpan scratch) const override {
    const uint64_t off = stripe * unit_;
    if (off + scratch.size() > node_->fragment.size()) {
      return Corruption(name() + ": fragment is shorter than unit " + std::to_string(stripe));
    }
    std::memcpy(scratch.data(), node_->fragment.data() + off, scratch.size());
    return UnitView{scratch, nullptr};
  }

 private:
  const MemoryNodes::Node* node_;
  uint64_t unit_;
};

}  // namespace

MemoryNodes::MemoryNodes(uint32_t n) : nodes_(n) {
  for (uint32_t f = 0; f < n; ++f) {
    nodes_[f].placement = Placement{f, LocalStore::NodeName(f), "site-" + std::to_string(f % 3)};
  }
}

Result<std::vector<std::unique_ptr<FragmentSink>>> MemoryNodes::OpenSinks(const BackupId&,
                                                                          uint32_t n, uint32_t,
                                                                          uint64_t) {
  if (n != nodes_.size()) {
    return InvalidArgument("backup needs " + std::to_string(n) + " nodes, have " +
                           std::to_string(nodes_.size()));
  }
  std::vector<std::unique_ptr<FragmentSink>> out;
  for (auto& n : nodes_) out.push_back(std::make_unique<MemorySink>(&n));
  return out;
}

std::vector<std::unique_ptr<FragmentSource>> MemoryNodes::Sources(uint64_t unit_size) {
  std::vector<std::unique_ptr<FragmentSource>> out;
  for (auto& n : nodes_) {
    if (n.published && !n.fragment.empty()) {
      out.push_back(std::make_unique<MemorySource>(&n, unit_size));
    }
  }
  return out;
}

void MemoryNodes::Reserve(uint64_t fragment_bytes) {
  for (auto& n : nodes_) {
    n.staging.resize(fragment_bytes);  // value-initialises: every page touched
    n.staging.clear();                 // keeps the capacity
  }
}

std::unique_ptr<MemoryNodes> MemoryNodes::Clone() const {
  auto out = std::make_unique<MemoryNodes>(size());
  for (uint32_t f = 0; f < size(); ++f) {
    Node& d = out->nodes_[f];
    const Node& s = nodes_[f];
    d.placement = s.placement;
    d.fragment = s.fragment;
    d.leaves = s.leaves;
    if (s.share) d.share = s.share->Clone();
    d.published = s.published;
  }
  return out;
}

std::vector<NamedShare> MemoryNodes::Shares() const {
  std::vector<NamedShare> out;
  for (const auto& n : nodes_) {
    if (n.share) out.push_back(NamedShare{n.placement.node_id, n.share->Clone()});
  }
  return out;
}

}  // namespace qv
