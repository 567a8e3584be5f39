#include "node/metrics.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "base/wire.h"

namespace qv {

namespace {

// A label value escaped as the exposition format asks: backslash, double
// quote and newline.
std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

Bytes EncodeNodeStats(const NodeStats& s) {
  WireWriter w;
  w.U32(1).I64(s.now).U64(s.backups_published).U64(s.backups_prepared).U64(s.pending_requests);
  w.U64(s.stored_bytes).U64(s.free_bytes).U64(s.alerts).I64(s.last_witness);
  return w.Take();
}

Result<NodeStats> DecodeNodeStats(ByteSpan in) {
  WireReader r(in);
  QV_ASSIGN_OR_RETURN(uint32_t version, r.U32());
  if (version != 1) return InvalidArgument("node stats version " + std::to_string(version));
  NodeStats s;
  QV_ASSIGN_OR_RETURN(s.now, r.I64());
  QV_ASSIGN_OR_RETURN(s.backups_published, r.U64());
  QV_ASSIGN_OR_RETURN(s.backups_prepared, r.U64());
  QV_ASSIGN_OR_RETURN(s.pending_requests, r.U64());
  QV_ASSIGN_OR_RETURN(s.stored_bytes, r.U64());
  QV_ASSIGN_OR_RETURN(s.free_bytes, r.U64());
  QV_ASSIGN_OR_RETURN(s.alerts, r.U64());
  QV_ASSIGN_OR_RETURN(s.last_witness, r.I64());
  QV_RETURN_IF_ERROR(r.ExpectEnd());
  return s;
}

int64_t Metrics::LastWitnessed() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t last = 0;
  for (const auto& [peer, t] : witnessed_) last = std::max(last, t);
  return last;
}

std::string Metrics::OutcomeLabel(const Status& s) {
  // StatusCodeName in label form: "permission denied" -> "permission_denied".
  std::string label;
  for (char c : StatusCodeName(s.code())) {
    label += c == ' ' || c == '/' ? '_' : static_cast<char>(std::tolower(c));
  }
  return label;
}

void Metrics::Count(std::string_view op, const Status& outcome, uint64_t bytes_in,
                    uint64_t bytes_out, double ms) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string o(op);
  ++requests_[{o, OutcomeLabel(outcome)}];
  if (outcome.code() == StatusCode::kPermissionDenied) ++refusals_[o];
  bytes_in_[o] += bytes_in;
  bytes_out_[o] += bytes_out;
  if (op == "release" && outcome.ok()) {
    ++releases_;
    release_seconds_ += ms / 1000.0;
  }
}

void Metrics::Witnessed(const std::string& peer, int64_t unix) {
  std::lock_guard<std::mutex> lock(mu_);
  witnessed_[peer] = unix;
}

void Metrics::ConnectionCapped(bool per_address) {
  std::lock_guard<std::mutex> lock(mu_);
  ++(per_address ? capped_per_address_ : capped_total_);
}

std::string Metrics::Text(const std::string& node, const Gauges& g) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string n = "node=\"" + Label(node) + "\"";
  std::string out;
  Header(out, "qv_requests_total", "counter", "Requests handled, by kind and outcome.");
  for (const auto& [k, v] : requests_) {
    out += "qv_requests_total{" + n + ",kind=\"" + Label(k.first) + "\",outcome=\"" +
           Label(k.second) + "\"} " + std::to_string(v) + "\n";
  }
  Header(out, "qv_refusals_total", "counter",
         "Requests refused by policy (permission denied), by kind; each is audited.");
  for (const auto& [k, v] : refusals_) {
    out += "qv_refusals_total{" + n + ",kind=\"" + Label(k) + "\"} " + std::to_string(v) + "\n";
  }
  Header(out, "qv_received_bytes_total", "counter", "Request payload bytes received, by kind.");
  for (const auto& [k, v] : bytes_in_) {
    out +=
        "qv_received_bytes_total{" + n + ",kind=\"" + Label(k) + "\"} " + std::to_string(v) + "\n";
  }
  Header(out, "qv_served_bytes_total", "counter", "Response payload bytes served, by kind.");
  for (const auto& [k, v] : bytes_out_) {
    out += "qv_served_bytes_total{" + n + ",kind=\"" + Label(k) + "\"} " + std::to_string(v) + "\n";
  }
  Header(out, "qv_connections_capped_total", "counter",
         "Connections closed at accept: a cap on unauthenticated connections was reached.");
  out +=
      "qv_connections_capped_total{" + n + ",cap=\"node\"} " + std::to_string(capped_total_) + "\n";
  out += "qv_connections_capped_total{" + n + ",cap=\"address\"} " +
         std::to_string(capped_per_address_) + "\n";
  Header(out, "qv_release_seconds", "summary",
         "Time from a certificate's arrival to the sealed share's release.");
  out += "qv_release_seconds_sum{" + n + "} " + Number(release_seconds_) + "\n";
  out += "qv_release_seconds_count{" + n + "} " + std::to_string(releases_) + "\n";
  Header(out, "qv_backups", "gauge", "Backups this node holds, by state.");
  out += "qv_backups{" + n + ",state=\"published\"} " + std::to_string(g.backups_published) + "\n";
  out += "qv_backups{" + n + ",state=\"prepared\"} " + std::to_string(g.backups_prepared) + "\n";
  Header(out, "qv_stored_bytes", "gauge", "Bytes of fragments and leaf hashes this node holds.");
  out += "qv_stored_bytes{" + n + "} " + std::to_string(g.stored_bytes) + "\n";
  Header(out, "qv_free_bytes", "gauge", "Free bytes on the file system of the data folder.");
  out += "qv_free_bytes{" + n + "} " + std::to_string(g.free_bytes) + "\n";
  Header(out, "qv_audit_alerts", "gauge", "Alert entries in this node's audit log.");
  out += "qv_audit_alerts{" + n + "} " + std::to_string(g.alerts) + "\n";
  Header(out, "qv_pending_requests", "gauge", "Restore requests waiting for custodians here.");
  out += "qv_pending_requests{" + n + "} " + std::to_string(g.pending_requests) + "\n";
  Header(out, "qv_witness_lag_seconds", "gauge",
         "Seconds since this node last finished witnessing each peer's audit log.");
  for (const auto& [peer, t] : witnessed_) {
    out += "qv_witness_lag_seconds{" + n + ",peer=\"" + Label(peer) + "\"} " +
           std::to_string(g.now > t ? g.now - t : 0) + "\n";
  }
  return out;
}

}  // namespace qv
