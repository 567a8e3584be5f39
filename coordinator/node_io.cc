#include "coordinator/node_io.h"

#include <sodium.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <thread>

namespace qv {

namespace {

class RemoteSink : public FragmentSink {
 public:
  // With `threaded`, batches go out from a sender thread of its own while
  // the next ones are coded; without, each is sent when full, on the
  // calling thread.
  RemoteSink(NodeCaller* caller, Placement placement, BackupId id, size_t inflight,
             std::array<uint8_t, 32> box_key, bool threaded)
      : caller_(caller),
        placement_(std::move(placement)),
        box_key_(box_key),
        id_(id),
        limit_(inflight),
        threaded_(threaded) {
    if (threaded_) sender_ = std::thread([this] { SendLoop(); });
  }
  ~RemoteSink() override { Abort(); }

  Status Begin(uint32_t unit, uint64_t stripes) {
    Request r;
    r.op = Op::kBeginFragment;
    r.backup_id = id_;
    r.fragment = placement_.fragment;
    r.a = unit;
    r.b = stripes;
    return CallChecked(*caller_, r).status();
  }

  const Placement& placement() const override { return placement_; }

  Status Append(ByteSpan unit) override {
    // Sized once per batch so appending never regrows (and recopies) it.
    if (batch_.capacity() == 0) batch_.reserve(kBatch + unit.size() + kHeaderReserve);
    batch_.insert(batch_.end(), unit.begin(), unit.end());
    if (batch_.size() >= kBatch) return Flush();
    return FirstError();
  }

  Status Prepare(const std::vector<Digest>&, const Share& share, const SignedManifest& manifest,
                 int64_t deadline) override {
    QV_RETURN_IF_ERROR(Flush());
    QV_RETURN_IF_ERROR(Drain());
    Request r;
    r.op = Op::kPrepare;
    r.backup_id = id_;
    QV_RETURN_IF_ERROR(AttachManifest(*caller_, id_, manifest.encoded(), &r));
    r.a = static_cast<uint64_t>(deadline);
    // Sealed to the node's own key: the request, the channel's buffers and
    // the node's decoder only ever hold the share encrypted.
    QV_ASSIGN_OR_RETURN(r.payload2, SealToKey(box_key_, EncodeShare(share)));
    return CallChecked(*caller_, std::move(r)).status();
  }

  Status Publish(const CommitRecord& record) override {
    Request r;
    r.op = Op::kPublish;
    r.backup_id = id_;
    r.payload = record.Encode();
    // Whatever the answer, the decision is out: this sink never aborts now
    // (the node may hold the record; its peers settle the rest).
    published_ = true;
    return CallChecked(*caller_, r).status();
  }

  void Abort() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      queue_.clear();
      cv_.notify_all();
    }
    if (sender_.joinable()) sender_.join();
    if (!published_) {
      Request r;
      r.op = Op::kAbort;
      r.backup_id = id_;
      (void)caller_->Call(r);  // best effort: the node also discards on disconnect
    }
  }

 private:
  static constexpr size_t kBatch = 2u << 20;

  Status Flush() {
    if (batch_.empty()) return FirstError();
    if (!threaded_) {
      if (!error_.ok()) return error_;
      Request r;
      r.op = Op::kFragmentData;
      r.backup_id = id_;
      r.payload = std::move(batch_);
      batch_.clear();
      error_ = CallChecked(*caller_, std::move(r)).status();
      return error_;
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock,
             [&] { return queued_ + batch_.size() <= limit_ || queue_.empty() || !error_.ok(); });
    if (!error_.ok()) return error_;
    queued_ += batch_.size();
    queue_.push_back(std::move(batch_));
    batch_.clear();
    cv_.notify_all();
    return Status::Ok();
  }

  Status Drain() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return (queue_.empty() && !sending_) || !error_.ok(); });
    return error_;
  }

  Status FirstError() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

  void SendLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      Request r;
      r.op = Op::kFragmentData;
      r.backup_id = id_;
      r.payload = std::move(queue_.front());
      queue_.pop_front();
      const size_t size = r.payload.size();
      sending_ = true;
      lock.unlock();
      Status s = CallChecked(*caller_, std::move(r)).status();
      lock.lock();
      sending_ = false;
      queued_ -= size;
      if (!s.ok() && error_.ok()) error_ = s;
      cv_.notify_all();
    }
  }

  NodeCaller* caller_;
  Placement placement_;
  std::array<uint8_t, 32> box_key_;  // the node's X25519 public key
  BackupId id_;
  size_t limit_;
  const bool threaded_;
  Bytes batch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Bytes> queue_;
  size_t queued_ = 0;
  bool sending_ = false, stopping_ = false, published_ = false;
  Status error_;
  std::thread sender_;
};

// Reads a node's fragment in batches of units on one fetch thread of its
// own, started by the first read, which keeps two requests in flight and up
// to two batches past the one being read in memory, so the network and the
// node overlap the restore's decoding. The batch before the one being read
// is kept too, for workers a stripe behind. One long-lived thread per
// source, not one per batch: thread start and its fresh heap pages cost more
// than the fetch itself.
class RemoteSource : public FragmentSource {
 public:
  // Without `threaded`, each batch is fetched on the reading thread when
  // first needed.
  RemoteSource(NodeCaller* caller, BackupId id, uint32_t fragment, uint64_t unit, uint64_t stripes,
               bool threaded)
      : threaded_(threaded),
        caller_(caller),
        id_(id),
        fragment_(fragment),
        unit_(unit),
        stripes_(stripes),
        batch_(std::max<uint64_t>(1, (4u << 20) / std::max<uint64_t>(unit, 1))),
        batches_total_((stripes + batch_ - 1) / batch_) {}
  ~RemoteSource() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (fetcher_.joinable()) fetcher_.join();
  }
  const std::string& name() const override { return caller_->name(); }
  uint32_t fragment() const override { return fragment_; }
  // In pages of kLeavesPage: a fragment has one leaf per stripe, and a
  // backup of millions of stripes has more leaves than one answer holds.
  Result<std::vector<Digest>> ReadLeaves() override {
    std::vector<Digest> out;
    out.reserve(static_cast<size_t>(stripes_));
    while (out.size() < stripes_) {
      Request r;
      r.op = Op::kGetLeaves;
      r.backup_id = id_;
      r.a = out.size();
      r.b = std::min<uint64_t>(kLeavesPage, stripes_ - out.size());
      QV_ASSIGN_OR_RETURN(Response resp, CallChecked(*caller_, r));
      if (resp.payload.size() % 32 || resp.payload.empty() || resp.payload.size() / 32 > r.b) {
        return Corruption("leaf page " + std::to_string(r.a) + " is not " + std::to_string(r.b) +
                          " whole hashes");
      }
      const size_t n = resp.payload.size() / 32;
      const size_t at = out.size();
      out.resize(at + n);
      for (size_t i = 0; i < n; ++i) {
        std::memcpy(out[at + i].data(), resp.payload.data() + 32 * i, 32);
      }
    }
    return out;
  }
  // A view into the fetched batch, which the view keeps alive.
  Result<UnitView> ViewUnit(uint64_t stripe, MutableByteSpan scratch) const override {
    if (stripe >= stripes_ || scratch.size() != unit_) return InvalidArgument("unit out of range");
    const uint64_t b = stripe / batch_;
    std::unique_lock<std::mutex> lock(mu_);
    if (!threaded_) return ViewInline(b, stripe, lock);
    if (!fetcher_.joinable()) fetcher_ = std::thread([this] { FetchLoop(); });
    if (b > want_) {
      want_ = b;
      // Skipped ahead (this fragment was not needed for a while): drop what
      // lies behind and fetch from here.
      if (next_ + 1 < b) next_ = b;
      cv_.notify_all();
    }
    while (!batches_.count(b)) {
      if (b < next_ && !fetching_.count(b)) {
        // Behind the fetcher and already dropped (a retry): fetch it here.
        lock.unlock();
        auto units = Fetch(b);
        lock.lock();
        batches_.emplace(b, std::make_shared<Result<Bytes>>(std::move(units)));
        break;
      }
      cv_.wait(lock);
    }
    std::shared_ptr<const Result<Bytes>> units = batches_.at(b);
    while (!batches_.empty() && batches_.begin()->first + 1 < want_) {
      batches_.erase(batches_.begin());
    }
    lock.unlock();
    if (!units->ok()) return units->status();
    const uint64_t off = (stripe - b * batch_) * unit_;
    return UnitView{ByteSpan((*units)->data() + off, unit_), std::move(units)};
  }

 private:
  // Two fetches in flight: the node reads and seals the next batch while this
  // side decrypts the last one, so neither waits out the other's turn.
  static constexpr size_t kPipeline = 2;

  // With mu_ held (by `lock`): batch b fetched here unless held; the
  // batch before it is kept for a reader a stripe behind.
  Result<UnitView> ViewInline(uint64_t b, uint64_t stripe,
                              std::unique_lock<std::mutex>& lock) const {
    if (!batches_.count(b)) {
      lock.unlock();
      auto units = std::make_shared<const Result<Bytes>>(Fetch(b));
      lock.lock();
      batches_.emplace(b, std::move(units));
    }
    std::shared_ptr<const Result<Bytes>> units = batches_.at(b);
    while (!batches_.empty() && batches_.begin()->first + 1 < b) batches_.erase(batches_.begin());
    lock.unlock();
    if (!units->ok()) return units->status();
    const uint64_t off = (stripe - b * batch_) * unit_;
    return UnitView{ByteSpan((*units)->data() + off, unit_), std::move(units)};
  }

  // Units in batch b (the last batch may be short).
  uint64_t UnitsIn(uint64_t b) const { return std::min(batch_, stripes_ - b * batch_); }

  Request FetchRequest(uint64_t b) const {
    Request r;
    r.op = Op::kFetchUnits;
    r.backup_id = id_;
    r.a = b * batch_;
    r.b = UnitsIn(b);
    return r;
  }

  Result<Bytes> CheckBatch(uint64_t b, Result<Response> resp) const {
    // No node name here: the pipeline names the source of every problem.
    if (!resp.ok()) return resp.status();
    QV_RETURN_IF_ERROR(resp->ToStatus());
    if (resp->payload.size() != UnitsIn(b) * unit_) {
      return Corruption("unit batch has the wrong size");
    }
    return std::move(resp->payload);
  }

  Result<Bytes> Fetch(uint64_t b) const { return CheckBatch(b, caller_->Call(FetchRequest(b))); }

  void FetchLoop() const {
    std::deque<uint64_t> inflight;  // sent, in order; their responses are pending
    std::unique_lock<std::mutex> lock(mu_);
    auto can_send = [&] {
      return !stop_ && inflight.size() < kPipeline && next_ < batches_total_ &&
             next_ <= want_ + kPipeline;
    };
    while (true) {
      cv_.wait(lock, [&] { return stop_ || can_send() || !inflight.empty(); });
      if (can_send()) {
        const uint64_t b = next_++;
        fetching_.insert(b);
        lock.unlock();
        Status sent = caller_->Send(FetchRequest(b));
        lock.lock();
        if (sent.ok()) {
          inflight.push_back(b);
        } else {
          fetching_.erase(b);
          batches_.emplace(b, std::make_shared<Result<Bytes>>(sent));
          cv_.notify_all();
        }
        continue;
      }
      if (inflight.empty()) return;  // stopping, nothing owed
      // Responses are received even when stopping: the connection must be
      // left with nothing outstanding for later calls.
      const uint64_t b = inflight.front();
      inflight.pop_front();
      lock.unlock();
      auto units = std::make_shared<Result<Bytes>>(CheckBatch(b, caller_->Receive()));
      lock.lock();
      fetching_.erase(b);
      if (b + 1 >= want_) batches_.emplace(b, std::move(units));  // else: skipped past it
      cv_.notify_all();
    }
  }

  const bool threaded_;
  NodeCaller* caller_;
  BackupId id_;
  uint32_t fragment_;
  uint64_t unit_, stripes_, batch_, batches_total_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::thread fetcher_;
  mutable bool stop_ = false;
  mutable uint64_t next_ = 0;  // the next batch the fetcher reads
  mutable uint64_t want_ = 0;  // the furthest batch a reader has asked for
  mutable std::set<uint64_t> fetching_;
  mutable std::map<uint64_t, std::shared_ptr<const Result<Bytes>>> batches_;
};

}  // namespace

RemoteTarget::RemoteTarget(std::vector<NodeCaller*> callers, std::vector<Placement> placement,
                           std::vector<PublicKey> node_keys, size_t inflight_bytes,
                           Executor* executor)
    : callers_(std::move(callers)),
      placement_(std::move(placement)),
      node_keys_(std::move(node_keys)),
      inflight_(inflight_bytes),
      executor_(executor) {}

Result<std::vector<std::unique_ptr<FragmentSink>>> RemoteTarget::OpenSinks(const BackupId& id,
                                                                           uint32_t n,
                                                                           uint32_t unit_size,
                                                                           uint64_t stripes) {
  if (node_keys_.size() != callers_.size()) return Internal("a node key per caller is needed");
  if (n != callers_.size()) {
    return InvalidArgument("backup needs " + std::to_string(n) + " nodes, the cluster has " +
                           std::to_string(callers_.size()));
  }
  std::vector<std::unique_ptr<FragmentSink>> sinks;
  for (uint32_t f = 0; f < n; ++f) {
    QV_ASSIGN_OR_RETURN(auto box_key, X25519PublicFromEd25519(node_keys_[f]));
    auto s = std::make_unique<RemoteSink>(callers_[f], placement_[f], id, inflight_, box_key,
                                          executor_->threaded());
    Status st = s->Begin(unit_size, stripes);
    if (!st.ok()) {
      for (auto& done : sinks) done->Abort();
      s->Abort();
      return st;
    }
    sinks.push_back(std::move(s));
  }
  return sinks;
}

std::unique_ptr<FragmentSource> NewRemoteSource(NodeCaller* caller, const BackupId& id,
                                                uint32_t fragment, uint64_t unit_size,
                                                uint64_t stripes, Executor* executor) {
  return std::make_unique<RemoteSource>(caller, id, fragment, unit_size, stripes,
                                        executor->threaded());
}

namespace {

// A node's signed manifest, fetched a page at a time: the same as one
// response would carry (a Response with the manifest as payload).
Result<Response> FetchManifestPages(NodeCaller& c, const BackupId& id) {
  Response whole;
  std::optional<uint64_t> total;
  while (!total || whole.payload.size() < *total) {
    Request r;
    r.op = Op::kGetManifest;
    r.backup_id = id;
    r.a = whole.payload.size();
    r.b = kManifestPage;
    QV_ASSIGN_OR_RETURN(Response page, CallChecked(c, r));
    if (page.payload.size() < 8) return Corruption(c.name() + ": short manifest page");
    const uint64_t t = GetU64BE(page.payload.data());
    if (t > kMaxManifestSize || (total && t != *total)) {
      return Corruption(c.name() + ": manifest size changed or out of range");
    }
    total = t;
    if (page.payload.size() == 8 && whole.payload.size() < t) {
      return Corruption(c.name() + ": empty manifest page");
    }
    whole.payload.insert(whole.payload.end(), page.payload.begin() + 8, page.payload.end());
    if (whole.payload.size() > t) return Corruption(c.name() + ": manifest longer than it said");
  }
  return whole;
}

}  // namespace

Status AttachManifest(NodeCaller& caller, const BackupId& id, const Bytes& m, Request* request) {
  if (m.size() <= kManifestPage) {
    request->payload = m;
    return Status::Ok();
  }
  for (size_t at = 0; at < m.size(); at += kManifestPage) {
    Request piece;
    piece.op = Op::kManifestData;
    piece.backup_id = id;
    piece.payload.assign(
        m.begin() + static_cast<std::ptrdiff_t>(at),
        m.begin() + static_cast<std::ptrdiff_t>(std::min(m.size(), at + kManifestPage)));
    QV_RETURN_IF_ERROR(CallChecked(caller, std::move(piece)).status());
  }
  return Status::Ok();
}

Result<SignedManifest> FetchManifest(const std::vector<NodeCaller*>& callers, const BackupId& id,
                                     const PublicKey& coordinator,
                                     std::vector<std::string>* problems) {
  std::optional<SignedManifest> chosen;
  for (NodeCaller* c : callers) {
    auto resp = FetchManifestPages(*c, id);
    if (!resp.ok()) {
      problems->push_back(resp.status().message());
      continue;
    }
    auto sm = SignedManifest::Parse(resp->payload, &coordinator);
    if (!sm.ok() || sm->manifest().backup_id != id) {
      problems->push_back(c->name() + ": manifest rejected: " +
                          (sm.ok() ? std::string("wrong backup") : sm.status().message()));
      continue;
    }
    // A repair makes a new revision; a node that was down then still holds
    // an older one. The newest is in force; two different manifests of the
    // same revision are a conflict.
    if (!chosen || sm->manifest().revision > chosen->manifest().revision) {
      if (chosen) {
        problems->push_back("a node holds revision " + std::to_string(chosen->manifest().revision) +
                            " of the manifest");
      }
      chosen = std::move(sm).value();
    } else if (sm->manifest().revision < chosen->manifest().revision) {
      problems->push_back(c->name() + " holds revision " + std::to_string(sm->manifest().revision) +
                          " of the manifest, not " + std::to_string(chosen->manifest().revision));
    } else if (chosen->encoded() != sm->encoded()) {
      return Unauthenticated(c->name() + " holds a different validly signed manifest");
    }
  }
  if (!chosen) {
    std::string why;
    for (const auto& p : *problems) why += "; " + p;
    return NotFound("no node returned a valid manifest for " + BackupIdToText(id) + why);
  }
  return std::move(*chosen);
}

std::vector<NamedShare> ReleaseShares(const std::vector<NodeCaller*>& callers,
                                      const SignedManifest& sm, ByteSpan certificate,
                                      const BoxKeyPair& reply_key,
                                      std::vector<std::string>* problems,
                                      const std::vector<Bytes>* proofs, Executor* executor) {
  std::vector<std::optional<NamedShare>> got(callers.size());
  std::vector<std::string> errors(callers.size());
  std::vector<std::function<void()>> tasks;
  for (size_t i = 0; i < callers.size(); ++i) {
    tasks.emplace_back([&, i] {
      NodeCaller* c = callers[i];
      Request r;
      r.op = Op::kRelease;
      r.backup_id = sm.manifest().backup_id;
      r.payload.assign(certificate.begin(), certificate.end());
      if (proofs != nullptr && i < proofs->size()) r.payload2 = (*proofs)[i];
      auto resp = CallChecked(*c, std::move(r));
      if (!resp.ok()) {
        errors[i] = resp.status().message();
        return;
      }
      auto opened = OpenSealed(reply_key, resp->payload);
      if (!opened.ok()) {
        errors[i] = c->name() + ": released share " + opened.status().message();
        return;
      }
      auto share = DecodeShare(opened->span());
      if (!share.ok()) {
        errors[i] = c->name() + ": " + share.status().message();
        return;
      }
      got[i] = NamedShare{c->name(), std::move(share).value()};
    });
  }
  executor->RunAll(std::move(tasks));
  std::vector<NamedShare> out;
  for (size_t i = 0; i < callers.size(); ++i) {
    if (got[i]) {
      out.push_back(std::move(*got[i]));
    } else {
      problems->push_back(errors[i]);
    }
  }
  return out;
}

void SendReceipts(const std::vector<NodeCaller*>& callers, const BackupId& backup,
                  const ReleaseReceipt& receipt, std::vector<std::string>* problems,
                  Executor* executor) {
  const Bytes payload = EncodeReceipt(receipt);
  std::vector<Status> results(callers.size());
  std::vector<std::function<void()>> tasks;
  for (size_t i = 0; i < callers.size(); ++i) {
    tasks.emplace_back([&, i] {
      Request r;
      r.op = Op::kReleaseReceipt;
      r.backup_id = backup;
      r.payload = payload;
      results[i] = CallChecked(*callers[i], std::move(r)).status();
    });
  }
  executor->RunAll(std::move(tasks));
  for (const auto& st : results) {
    if (!st.ok()) problems->push_back("release receipt not recorded: " + st.message());
  }
}

}  // namespace qv
