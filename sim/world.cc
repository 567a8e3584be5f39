#include "sim/world.h"

#include <sodium.h>

#include <algorithm>

#include "crypto/identity.h"
#include "crypto/secretbox.h"
#include "crypto/vss.h"
#include "node/scrub_wire.h"
#include "quorum/request.h"

namespace qv::sim {

uint64_t Rng::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Rng::Below(uint64_t n) {
  // Rejection sampling: no modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do {
    v = Next();
  } while (v >= limit);
  return v % n;
}

bool Rng::Chance(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p;
}

Rng Rng::Fork(const std::string& label) {
  uint64_t h = Next();
  for (unsigned char c : label) h = (h ^ c) * 0x100000001b3ull;  // FNV-1a step
  return Rng(h);
}

void SeededExecutor::RunAll(std::vector<std::function<void()>> tasks) {
  // Fisher-Yates with the world's stream.
  for (size_t i = tasks.size(); i > 1; --i) std::swap(tasks[i - 1], tasks[rng_->Below(i)]);
  for (auto& t : tasks) t();
}

void Network::Cut(const std::string& a, const std::string& b) {
  cut_.insert({a, b});
  cut_.insert({b, a});
}

Network::Link Network::LinkBetween(const std::string& a, const std::string& b) const {
  if (auto it = pair_links_.find({a, b}); it != pair_links_.end()) return it->second;
  Link l = a == b ? lan_ : wan_;
  // The slower of the two ends' overrides.
  for (const auto* site : {&a, &b}) {
    auto it = site_links_.find(*site);
    if (it == site_links_.end()) continue;
    l.latency_ms = std::max(l.latency_ms, it->second.latency_ms);
    if (it->second.bytes_per_ms > 0 &&
        (l.bytes_per_ms == 0 || it->second.bytes_per_ms < l.bytes_per_ms)) {
      l.bytes_per_ms = it->second.bytes_per_ms;
    }
    l.loss = std::max(l.loss, it->second.loss);
  }
  return l;
}

bool Network::Connected(const std::string& a, const std::string& b) const {
  return !cut_.count({a, b});
}

Status Network::Transfer(const std::string& from, const std::string& to, size_t bytes) {
  ++calls_;
  for (const std::string& part : {from, std::string(">"), to, std::to_string(bytes)}) {
    for (unsigned char c : part) trace_ = (trace_ ^ c) * 0x100000001b3ull;  // FNV-1a
  }
  if (!Connected(from, to)) {
    clock_->AdvanceMs(LinkBetween(from, to).latency_ms);
    return IoError("connection from " + from + " to " + to + " timed out (partitioned)");
  }
  const Link l = LinkBetween(from, to);
  if (rng_.Chance(l.loss)) {
    clock_->AdvanceMs(l.latency_ms);
    return IoError("connection from " + from + " to " + to + " reset (packet loss)");
  }
  bytes_ += bytes;
  int64_t ms = l.latency_ms;
  if (l.bytes_per_ms > 0) ms += static_cast<int64_t>(static_cast<double>(bytes) / l.bytes_per_ms);
  clock_->AdvanceMs(ms);
  return Status::Ok();
}

namespace {

void Lie(const Endpoint& ep, const Request& request, Response& resp) {
  if (request.op == Op::kRelease) {
    auto cert = Certificate::Parse(request.payload);
    if (!cert.ok()) return;
    Share wrong{ep.share_x, SecretBytes::Random(32)};
    wrong.y.data()[31] &= 0x0f;  // a canonical scalar, so only the commitments catch it
    auto sealed = SealToKey(cert->request.request().reply_key, EncodeShare(wrong));
    if (sealed.ok()) resp.payload = std::move(sealed).value();
  } else if (request.op == Op::kScrub) {
    // A share proof made with a made-up share, for this very challenge.
    auto answer = DecodeScrubAnswer(resp.payload);
    auto challenge = DecodeScrubChallenge(request.payload);
    if (!answer.ok() || !challenge.ok()) return;
    Share wrong{ep.share_x, SecretBytes::Random(32)};
    wrong.y.data()[31] &= 0x0f;
    auto proof =
        ProveShare(wrong, ScrubProofContext(challenge->nonce, resp.node_id, request.backup_id));
    if (!proof.ok()) return;
    answer->share_proved = true;
    answer->share_proof = *proof;
    resp.payload = EncodeScrubAnswer(*answer);
  } else if (request.op == Op::kFetchUnits && !resp.payload.empty()) {
    resp.payload[resp.payload.size() / 2] ^= 0x5a;
  }
}

}  // namespace

SimCaller::SimCaller(Network* net, std::string site, const PublicKey& key, std::string node)
    : net_(net), site_(std::move(site)), key_(key), node_(std::move(node)) {}

Result<std::unique_ptr<NodeCaller>> SimCaller::Dial(Network* net, std::string site,
                                                    const PublicKey& key, std::string node,
                                                    std::string from) {
  std::unique_ptr<SimCaller> c(new SimCaller(net, std::move(site), key, std::move(node)));
  c->from_ = std::move(from);
  QV_RETURN_IF_ERROR(c->Handshake());
  return std::unique_ptr<NodeCaller>(std::move(c));
}

// Noise_XX takes one and a half round trips; the node identifies the
// caller by its static key, exactly as NodeServer does.
Status SimCaller::Handshake() {
  auto it = net_->endpoints().find(node_);
  if (it == net_->endpoints().end()) return IoError("no such node in the simulation");
  Endpoint& ep = it->second;
  QV_RETURN_IF_ERROR(net_->Transfer(site_, ep.site, 96));
  if (ep.service == nullptr || ep.crashing) return IoError("connection refused (node down)");
  QV_RETURN_IF_ERROR(net_->Transfer(ep.site, site_, 144));
  QV_ASSIGN_OR_RETURN(auto x, X25519PublicFromEd25519(key_));
  PeerInfo peer = ep.service->Identify(x);
  if (peer.role == PeerRole::kUnknown) {
    // As NodeServer does: the handshake completes (the peer proved its
    // key), the refusal is audited, one answer names the problem, and the
    // connection closes.
    ep.service->RefuseUnknownPeer(site_, peer.name);
    refusal_ =
        "this key (" + peer.name.substr(8) + "...) is not pinned in " + node_ + "'s cluster file";
    return Status::Ok();
  }
  session_ = std::make_unique<NodeService::Session>(std::move(peer));
  incarnation_ = ep.incarnation;
  return Status::Ok();
}

Result<Response> SimCaller::Call(Request request) {
  auto it = net_->endpoints().find(node_);
  if (it == net_->endpoints().end()) return IoError("no such node in the simulation");
  Endpoint& ep = it->second;
  if (!refusal_.empty()) {
    Response no = Response::FromStatus(PermissionDenied(refusal_));
    no.node_id = node_;
    refusal_.clear();  // the one answer; the connection is closed after it
    return no;
  }
  if (!session_) return IoError("connection closed");
  // A lying node's share-recovery values, altered as it sends them (the
  // low byte of the scalar: still canonical, so only the new holder's
  // commitment check can catch it).
  if (auto from = net_->endpoints().find(from_);
      from != net_->endpoints().end() && from->second.lying &&
      (request.op == Op::kShareSummand || request.op == Op::kSharePartial) &&
      request.payload.size() > 16) {
    request.payload[16] ^= 0x01;
  }
  QV_ASSIGN_OR_RETURN(Bytes wire, EncodeRequest(std::move(request)));
  QV_RETURN_IF_ERROR(net_->Transfer(site_, ep.site, wire.size()));
  if (ep.service == nullptr || ep.crashing) {
    session_.reset();
    return IoError("connection reset (node down)");
  }
  // A node that restarted since this connection was made has forgotten
  // it: the connection is gone.
  if (incarnation_ != ep.incarnation) {
    session_.reset();
    return IoError("connection reset (node restarted)");
  }
  QV_ASSIGN_OR_RETURN(Request parsed, DecodeRequest(std::move(wire)));
  Response resp = ep.service->Handle(*session_, parsed);
  if (ep.crashing) {
    session_.reset();
    return IoError("connection reset (node crashed)");
  }
  if (ep.lying && resp.ToStatus().ok()) Lie(ep, parsed, resp);
  QV_ASSIGN_OR_RETURN(Bytes back, EncodeResponse(std::move(resp)));
  QV_RETURN_IF_ERROR(net_->Transfer(ep.site, site_, back.size()));
  return DecodeResponse(std::move(back));
}

}  // namespace qv::sim
