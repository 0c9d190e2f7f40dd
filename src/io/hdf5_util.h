// Small helpers over HDF5's C API, shared by the file formats in src/io. Every failure throws
// IoError naming the file and the object.
#ifndef BILEVEL_SRC_IO_HDF5_UTIL_H_
#define BILEVEL_SRC_IO_HDF5_UTIL_H_

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bilevel/types.h"
#include "io/io_error.h"

namespace bilevel::io {

// Owns an HDF5 identifier and closes it on scope exit.
class H5Handle {
 public:
  H5Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~H5Handle() {
    if (id_ >= 0) close_(id_);
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  H5Handle(H5Handle&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }
  H5Handle& operator=(H5Handle&&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// HDF5 prints its own error stack by default; our messages say what failed.
void SilenceHdf5();

// Opens an existing HDF5 file read-only, or throws IoError("PATH: not a readable HDF5 file").
H5Handle OpenForReading(const std::string& path);
// Creates a group, or throws.
H5Handle CreateGroup(hid_t loc, const std::string& name, const std::string& path);
// Opens a group, or throws naming it.
H5Handle OpenGroup(hid_t loc, const std::string& name, const std::string& path);

void WriteVector(hid_t loc, const std::string& name, const Vec& v, const std::string& path);
// A one-dimensional float64 dataset (any float type on disk is converted).
Vec ReadVector(hid_t loc, const std::string& name, const std::string& path);

void WriteAttribute(hid_t loc, const std::string& name, const std::string& value,
                    const std::string& path);
void WriteAttribute(hid_t loc, const std::string& name, std::int64_t value,
                    const std::string& path);
void WriteAttribute(hid_t loc, const std::string& name, double value, const std::string& path);
std::string ReadStringAttribute(hid_t loc, const std::string& name, const std::string& path);
std::int64_t ReadIntAttribute(hid_t loc, const std::string& name, const std::string& path);
double ReadDoubleAttribute(hid_t loc, const std::string& name, const std::string& path);

// Names of the links (datasets, groups) in a group, and of the attributes of an object, in
// creation order where HDF5 tracks it, else by name.
std::vector<std::string> LinkNames(hid_t group);
std::vector<std::string> AttributeNames(hid_t object);

// PATH.tmp.<pid>: where a file is written before it is moved into place.
std::string TemporaryPathFor(const std::string& path);
// fsyncs `tmp`, renames it over `path` and fsyncs the directory: `path` is then either the old
// file or the new one, whole, whatever happens. Removes `tmp` and throws on failure.
void MoveIntoPlace(const std::string& tmp, const std::string& path);

}  // namespace bilevel::io

#endif  // BILEVEL_SRC_IO_HDF5_UTIL_H_
