#include "io/result_file.h"

#include <cstdio>

#include "bilevel/version.h"
#include "io/hdf5_util.h"

namespace bilevel::io {

void WriteResult(const std::string& path, const RunResult& result) {
  SilenceHdf5();
  const std::string tmp = TemporaryPathFor(path);
  try {
    H5Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file.ok()) throw IoError(path + ": cannot create " + tmp);
    WriteVector(file.get(), "x", result.x, path);
    WriteVector(file.get(), "y", result.y, path);
    WriteAttribute(file.get(), "format_version", std::int64_t{kResultFormatVersion}, path);
    WriteAttribute(file.get(), "problem", result.problem, path);
    WriteAttribute(file.get(), "algorithm", result.algorithm, path);
    WriteAttribute(file.get(), "termination", result.termination, path);
    WriteAttribute(file.get(), "iterations", std::int64_t{result.iterations}, path);
    WriteAttribute(file.get(), "ranks", std::int64_t{result.ranks}, path);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  MoveIntoPlace(tmp, path);
}

RunResult ReadResult(const std::string& path) {
  H5Handle file = OpenForReading(path);
  RunResult r;
  const std::int64_t version = ReadIntAttribute(file.get(), "format_version", path);
  if (version != kResultFormatVersion)
    throw IoError(path + ": format_version " + std::to_string(version) + " is not " +
                  std::to_string(kResultFormatVersion));
  r.x = ReadVector(file.get(), "x", path);
  r.y = ReadVector(file.get(), "y", path);
  r.problem = ReadStringAttribute(file.get(), "problem", path);
  r.algorithm = ReadStringAttribute(file.get(), "algorithm", path);
  r.termination = ReadStringAttribute(file.get(), "termination", path);
  r.iterations = static_cast<int>(ReadIntAttribute(file.get(), "iterations", path));
  r.ranks = static_cast<int>(ReadIntAttribute(file.get(), "ranks", path));
  return r;
}

}  // namespace bilevel::io
