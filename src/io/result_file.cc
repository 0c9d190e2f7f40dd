#include "io/result_file.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

namespace bilevel::io {

namespace {

constexpr int kFormatVersion = 1;

// Closes an HDF5 handle on scope exit.
class H5Handle {
 public:
  H5Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~H5Handle() {
    if (id_ >= 0) close_(id_);
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// HDF5 prints its own error stack by default; our messages say what failed.
void SilenceHdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

void Fail(const std::string& path, const std::string& what) {
  throw IoError(path + ": " + what);
}

void WriteVector(hid_t file, const char* name, const Vec& v, const std::string& path) {
  const hsize_t dims[1] = {static_cast<hsize_t>(v.size())};
  H5Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  H5Handle set(H5Dcreate2(file, name, H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT),
               H5Dclose);
  if (!set.ok()) Fail(path, std::string("cannot create dataset /") + name);
  if (H5Dwrite(set.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
    Fail(path, std::string("cannot write dataset /") + name);
}

void WriteString(hid_t file, const char* name, const std::string& value, const std::string& path) {
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), value.empty() ? 1 : value.size());
  H5Tset_strpad(type.get(), H5T_STR_NULLTERM);
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Handle attr(H5Acreate2(file, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                H5Aclose);
  if (!attr.ok() || H5Awrite(attr.get(), type.get(), value.c_str()) < 0)
    Fail(path, std::string("cannot write attribute ") + name);
}

void WriteInt(hid_t file, const char* name, int value, const std::string& path) {
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Handle attr(H5Acreate2(file, name, H5T_STD_I32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                H5Aclose);
  if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_INT, &value) < 0)
    Fail(path, std::string("cannot write attribute ") + name);
}

Vec ReadVector(hid_t file, const char* name, const std::string& path) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) Fail(path, std::string("no dataset /") + name);
  H5Handle set(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (!set.ok()) Fail(path, std::string("cannot open dataset /") + name);
  H5Handle space(H5Dget_space(set.get()), H5Sclose);
  if (H5Sget_simple_extent_ndims(space.get()) != 1)
    Fail(path, std::string("dataset /") + name + " is not one-dimensional");
  hsize_t dims[1] = {0};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  Vec v(static_cast<Index>(dims[0]));
  if (H5Dread(set.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
    Fail(path, std::string("cannot read dataset /") + name);
  return v;
}

std::string ReadString(hid_t file, const char* name, const std::string& path) {
  if (H5Aexists(file, name) <= 0) Fail(path, std::string("no attribute ") + name);
  H5Handle attr(H5Aopen(file, name, H5P_DEFAULT), H5Aclose);
  H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0)
    Fail(path, std::string("attribute ") + name + " is not a fixed-length string");
  std::vector<char> buf(H5Tget_size(type.get()) + 1, '\0');
  if (H5Aread(attr.get(), type.get(), buf.data()) < 0)
    Fail(path, std::string("cannot read attribute ") + name);
  return std::string(buf.data());
}

int ReadInt(hid_t file, const char* name, const std::string& path) {
  if (H5Aexists(file, name) <= 0) Fail(path, std::string("no attribute ") + name);
  H5Handle attr(H5Aopen(file, name, H5P_DEFAULT), H5Aclose);
  int value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT, &value) < 0)
    Fail(path, std::string("cannot read attribute ") + name);
  return value;
}

}  // namespace

void WriteResult(const std::string& path, const RunResult& result) {
  SilenceHdf5();
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    H5Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file.ok()) Fail(path, "cannot create " + tmp);
    try {
      WriteVector(file.get(), "x", result.x, path);
      WriteVector(file.get(), "y", result.y, path);
      WriteInt(file.get(), "format_version", kFormatVersion, path);
      WriteString(file.get(), "problem", result.problem, path);
      WriteString(file.get(), "algorithm", result.algorithm, path);
      WriteString(file.get(), "termination", result.termination, path);
      WriteInt(file.get(), "iterations", result.iterations, path);
      WriteInt(file.get(), "ranks", result.ranks, path);
      if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) Fail(path, "cannot flush " + tmp);
    } catch (...) {
      std::remove(tmp.c_str());
      throw;
    }
  }
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!synced || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    Fail(path, "cannot move the new file into place: " + reason);
  }
}

RunResult ReadResult(const std::string& path) {
  SilenceHdf5();
  if (H5Fis_hdf5(path.c_str()) <= 0) Fail(path, "not a readable HDF5 file");
  H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) Fail(path, "cannot open");
  RunResult r;
  const int version = ReadInt(file.get(), "format_version", path);
  if (version != kFormatVersion)
    Fail(path, "format_version " + std::to_string(version) + " is not " +
                   std::to_string(kFormatVersion));
  r.x = ReadVector(file.get(), "x", path);
  r.y = ReadVector(file.get(), "y", path);
  r.problem = ReadString(file.get(), "problem", path);
  r.algorithm = ReadString(file.get(), "algorithm", path);
  r.termination = ReadString(file.get(), "termination", path);
  r.iterations = ReadInt(file.get(), "iterations", path);
  r.ranks = ReadInt(file.get(), "ranks", path);
  return r;
}

}  // namespace bilevel::io
