#include "io/checkpoint.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <sstream>
#include <thread>

#include "io/hdf5_util.h"

namespace bilevel::io {

namespace {

constexpr std::int64_t kFormatVersion = 1;
constexpr char kKind[] = "bilevel checkpoint";

struct OracleField {
  const char* name;
  std::int64_t OracleCounts::*member;
};
const OracleField kOracleFields[] = {
    {"grad_f", &OracleCounts::grad_f},   {"grad_f_calls", &OracleCounts::grad_f_calls},
    {"grad_g", &OracleCounts::grad_g},   {"grad_g_calls", &OracleCounts::grad_g_calls},
    {"hvp", &OracleCounts::hvp},         {"hvp_calls", &OracleCounts::hvp_calls},
    {"jvp", &OracleCounts::jvp},         {"jvp_calls", &OracleCounts::jvp_calls},
    {"value_f", &OracleCounts::value_f}, {"value_g", &OracleCounts::value_g}};

struct CommField {
  const char* name;
  std::int64_t CommStats::*member;
  bool optional = false;  // absent from checkpoints of earlier versions: read as 0
};
const CommField kCommFields[] = {
    {"allreduce_calls", &CommStats::allreduce_calls},
    {"allreduce_bytes", &CommStats::allreduce_bytes},
    {"reduce_calls", &CommStats::reduce_calls},
    {"reduce_bytes", &CommStats::reduce_bytes},
    {"broadcast_calls", &CommStats::broadcast_calls},
    {"broadcast_bytes", &CommStats::broadcast_bytes},
    {"reduce_scatter_calls", &CommStats::reduce_scatter_calls, true},
    {"reduce_scatter_bytes", &CommStats::reduce_scatter_bytes, true},
    {"allgather_calls", &CommStats::allgather_calls, true},
    {"allgather_bytes", &CommStats::allgather_bytes, true}};

void WriteVectors(hid_t file, const char* group_name, const NamedVectors& vectors,
                  const std::string& path) {
  H5Handle group = CreateGroup(file, group_name, path);
  for (const auto& [name, v] : vectors) WriteVector(group.get(), name, v, path);
}

NamedVectors ReadVectors(hid_t file, const char* group_name, const std::string& path) {
  H5Handle group = OpenGroup(file, group_name, path);
  NamedVectors out;
  for (const std::string& name : LinkNames(group.get()))
    out.emplace_back(name, ReadVector(group.get(), name, std::string(path) + " " + group_name));
  return out;
}

void WriteStrings(hid_t file, const char* group_name, const StringPairs& pairs,
                  const std::string& path) {
  H5Handle group = CreateGroup(file, group_name, path);
  for (const auto& [key, value] : pairs) WriteAttribute(group.get(), key, value, path);
}

StringPairs ReadStrings(hid_t file, const char* group_name, const std::string& path) {
  H5Handle group = OpenGroup(file, group_name, path);
  StringPairs out;
  for (const std::string& key : AttributeNames(group.get()))
    out.emplace_back(key, ReadStringAttribute(group.get(), key, path));
  return out;
}

// Test hook: BILEVEL_TEST_CHECKPOINT_DELAY_MS stretches the write, so that a test can kill the
// writer in the middle of it.
void TestDelay() {
  if (const char* ms = std::getenv("BILEVEL_TEST_CHECKPOINT_DELAY_MS"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(ms)));
}

void WriteFile(const std::string& tmp, const std::string& path, const Checkpoint& c) {
  H5Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) throw IoError(path + ": cannot create " + tmp);
  const hid_t f = file.get();
  WriteAttribute(f, "format_version", kFormatVersion, path);
  WriteAttribute(f, "kind", std::string(kKind), path);
  WriteAttribute(f, "iteration", std::int64_t{c.state.iteration}, path);
  WriteAttribute(f, "ranks", std::int64_t{c.ranks}, path);
  WriteAttribute(f, "solve_s", c.state.solve_s, path);
  WriteAttribute(f, "sampler_state", c.state.sampler, path);
  WriteAttribute(f, "problem", c.problem, path);
  WriteAttribute(f, "algorithm", c.algorithm, path);
  WriteAttribute(f, "last_metrics", c.last_metrics, path);
  WriteVector(f, "x", c.state.x, path);
  WriteVectors(f, "algorithm", c.state.algorithm, path);
  TestDelay();
  WriteVectors(f, "optimizer", c.state.optimizer, path);
  H5Handle counters = CreateGroup(f, "counters", path);
  for (const auto& field : kOracleFields)
    WriteAttribute(counters.get(), field.name, c.state.oracles.*field.member, path);
  for (const auto& field : kCommFields)
    WriteAttribute(counters.get(), field.name, c.state.comm.*field.member, path);
  WriteStrings(f, "options", c.options, path);
  WriteStrings(f, "problem", c.identity, path);
  if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) throw IoError(path + ": cannot flush " + tmp);
}

}  // namespace

Checkpoint ReadCheckpoint(const std::string& path) {
  H5Handle file = OpenForReading(path);
  const hid_t f = file.get();
  if (H5Aexists(f, "kind") <= 0 || ReadStringAttribute(f, "kind", path) != kKind)
    throw IoError(path + ": not a bilevel checkpoint (no attribute kind = \"" + kKind + "\")");
  const std::int64_t version = ReadIntAttribute(f, "format_version", path);
  if (version != kFormatVersion)
    throw IoError(path + ": checkpoint format_version " + std::to_string(version) +
                  " is not the supported " + std::to_string(kFormatVersion));
  Checkpoint c;
  const std::int64_t iteration = ReadIntAttribute(f, "iteration", path);
  if (iteration < 0 || iteration > std::numeric_limits<int>::max())
    throw IoError(path + ": attribute 'iteration' " + std::to_string(iteration) +
                  " is not in [0, 2^31 - 1]");
  c.state.iteration = static_cast<int>(iteration);
  const std::int64_t ranks = ReadIntAttribute(f, "ranks", path);
  if (ranks < 1 || ranks > std::numeric_limits<int>::max())
    throw IoError(path + ": attribute 'ranks' " + std::to_string(ranks) +
                  " is not in [1, 2^31 - 1]");
  c.ranks = static_cast<int>(ranks);
  c.state.solve_s = ReadDoubleAttribute(f, "solve_s", path);
  if (!(c.state.solve_s >= 0) || !std::isfinite(c.state.solve_s))
    throw IoError(path + ": attribute 'solve_s' is not a finite number >= 0");
  c.state.sampler = ReadStringAttribute(f, "sampler_state", path);
  {
    // The sampler's generator (Sampler::SaveState): checked here so that the error names the file.
    std::istringstream in(c.state.sampler);
    std::mt19937_64 generator;
    if (!(in >> generator))
      throw IoError(path + ": attribute 'sampler_state' is not a random generator state");
  }
  c.problem = ReadStringAttribute(f, "problem", path);
  c.algorithm = ReadStringAttribute(f, "algorithm", path);
  c.last_metrics = ReadStringAttribute(f, "last_metrics", path);
  c.state.x = ReadVector(f, "x", path);
  c.state.algorithm = ReadVectors(f, "algorithm", path);
  c.state.optimizer = ReadVectors(f, "optimizer", path);
  H5Handle counters = OpenGroup(f, "counters", path);
  for (const auto& field : kOracleFields)
    c.state.oracles.*field.member = ReadIntAttribute(counters.get(), field.name, path + " counters");
  for (const auto& field : kCommFields) {
    if (field.optional && H5Aexists(counters.get(), field.name) == 0) continue;
    c.state.comm.*field.member = ReadIntAttribute(counters.get(), field.name, path + " counters");
  }
  c.options = ReadStrings(f, "options", path);
  c.identity = ReadStrings(f, "problem", path);
  return c;
}

CheckpointWriter::CheckpointWriter(std::string path, int keep) : path_(std::move(path)), keep_(keep) {
  if (keep_ < 1) throw IoError(path_ + ": --checkpoint-keep must be >= 1");
}

void CheckpointWriter::Write(const Checkpoint& checkpoint) {
  SilenceHdf5();
  const std::string tmp = TemporaryPathFor(path_);
  try {
    WriteFile(tmp, path_, checkpoint);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  if (keep_ > 1 && access(path_.c_str(), F_OK) == 0) {
    // Keep the current checkpoint under its iteration number before replacing it.
    std::string older;
    try {
      H5Handle file = OpenForReading(path_);
      older = path_ + "." + std::to_string(ReadIntAttribute(file.get(), "iteration", path_));
    } catch (const IoError&) {
      older.clear();  // not a checkpoint of ours: it is simply replaced
    }
    if (!older.empty() && older != path_) {
      std::remove(older.c_str());
      if (::link(path_.c_str(), older.c_str()) == 0) kept_.push_back(older);
    }
  }
  MoveIntoPlace(tmp, path_);
  while (static_cast<int>(kept_.size()) > keep_ - 1) {
    std::remove(kept_.front().c_str());
    kept_.pop_front();
  }
}

}  // namespace bilevel::io
