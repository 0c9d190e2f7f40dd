#include "io/dataset.h"

#include <bzlib.h>
#include <fcntl.h>
#include <hdf5.h>
#include <lzma.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace bilevel::io {

namespace {

constexpr int kFormatVersion = 1;

// Closes an HDF5 handle on scope exit; movable, so helpers can return one.
class H5Handle {
 public:
  H5Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~H5Handle() {
    if (id_ >= 0) close_(id_);
  }
  H5Handle(H5Handle&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  H5Handle& operator=(H5Handle&&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// HDF5 prints its own error stack by default; our messages say what failed.
void SilenceHdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  throw IoError(path + ": " + what);
}

// "train/indptr: <what>".
[[noreturn]] void FailAt(const std::string& path, const std::string& split, const char* name,
                         const std::string& what) {
  Fail(path, split + "/" + name + ": " + what);
}

[[noreturn]] void FailRow(const std::string& path, const std::string& split, const char* name,
                          Index row, const std::string& what) {
  FailAt(path, split, name, "row " + std::to_string(row) + ": " + what);
}

std::string Str(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

bool IsSplitName(const std::string& split) {
  for (const auto& name : SplitNames())
    if (split == name) return true;
  return false;
}

// Read-only, with the default (sec2) driver. File locks are taken where the file system has
// them and skipped where it has none (Lustre or NFS without flock), instead of failing.
H5Handle OpenReadOnly(const std::string& path) {
  if (::access(path.c_str(), R_OK) != 0)
    Fail(path, std::string("cannot open: ") + std::strerror(errno));
  H5Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
#if H5_VERSION_GE(1, 10, 7)
  H5Pset_file_locking(fapl.get(), true, true);
#endif
  H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
  if (!file.ok()) Fail(path, "not a readable HDF5 file");
  return file;
}

// --- Attributes -----------------------------------------------------------------------------

void WriteScalarAttribute(hid_t file, const char* name, hid_t file_type, hid_t mem_type,
                          const void* value, const std::string& path) {
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Handle attr(H5Acreate2(file, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.ok() || H5Awrite(attr.get(), mem_type, value) < 0)
    Fail(path, std::string("cannot write attribute ") + name);
}

void WriteStringAttribute(hid_t file, const char* name, const std::string& value,
                          const std::string& path) {
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), value.empty() ? 1 : value.size());
  H5Tset_strpad(type.get(), H5T_STR_NULLTERM);
  WriteScalarAttribute(file, name, type.get(), type.get(), value.c_str(), path);
}

H5Handle OpenAttribute(hid_t file, const char* name, H5T_class_t expected_class,
                       const std::string& path) {
  if (H5Aexists(file, name) <= 0) Fail(path, std::string("no attribute ") + name);
  H5Handle attr(H5Aopen(file, name, H5P_DEFAULT), H5Aclose);
  if (!attr.ok()) Fail(path, std::string("cannot open attribute ") + name);
  H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  H5Handle space(H5Aget_space(attr.get()), H5Sclose);
  if (H5Tget_class(type.get()) != expected_class || H5Sget_simple_extent_npoints(space.get()) != 1)
    Fail(path, std::string("attribute ") + name + " is not a scalar " +
                   (expected_class == H5T_INTEGER ? "integer"
                    : expected_class == H5T_FLOAT ? "float"
                                                  : "string"));
  return attr;
}

std::int64_t ReadIntAttribute(hid_t file, const char* name, const std::string& path) {
  H5Handle attr = OpenAttribute(file, name, H5T_INTEGER, path);
  std::int64_t value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    Fail(path, std::string("cannot read attribute ") + name);
  return value;
}

double ReadDoubleAttribute(hid_t file, const char* name, const std::string& path) {
  H5Handle attr = OpenAttribute(file, name, H5T_FLOAT, path);
  double value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0)
    Fail(path, std::string("cannot read attribute ") + name);
  return value;
}

std::string ReadStringAttribute(hid_t file, const char* name, const std::string& path) {
  H5Handle attr = OpenAttribute(file, name, H5T_STRING, path);
  H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tis_variable_str(type.get()) > 0)
    Fail(path, std::string("attribute ") + name + " is not a fixed-length string");
  std::vector<char> buf(H5Tget_size(type.get()) + 1, '\0');
  if (H5Aread(attr.get(), type.get(), buf.data()) < 0)
    Fail(path, std::string("cannot read attribute ") + name);
  return std::string(buf.data());
}

// Reads and checks the root attributes.
DatasetInfo ReadAttributes(hid_t file, const std::string& path) {
  DatasetInfo info;
  const std::int64_t version = ReadIntAttribute(file, "format_version", path);
  if (version != kFormatVersion)
    Fail(path,
         "format_version " + std::to_string(version) + " is not " + std::to_string(kFormatVersion));
  info.format_version = static_cast<int>(version);
  DatasetAttributes& a = info.attributes;
  a.num_features = ReadIntAttribute(file, "num_features", path);
  if (a.num_features < 1 || a.num_features > INT32_MAX)
    Fail(path,
         "attribute num_features " + std::to_string(a.num_features) + " is not in [1, 2^31 - 1]");
  a.num_classes = ReadIntAttribute(file, "num_classes", path);
  if (a.num_classes < 1 || a.num_classes > INT32_MAX)
    Fail(path,
         "attribute num_classes " + std::to_string(a.num_classes) + " is not in [1, 2^31 - 1]");
  a.storage = ReadStringAttribute(file, "storage", path);
  if (a.storage != "dense" && a.storage != "csr")
    Fail(path, "attribute storage '" + a.storage + "' is not 'dense' or 'csr'");
  a.sources = ReadStringAttribute(file, "sources", path);
  a.source_sha256 = ReadStringAttribute(file, "source_sha256", path);
  a.corruption_rate = ReadDoubleAttribute(file, "corruption_rate", path);
  if (!(a.corruption_rate >= 0 && a.corruption_rate <= 1))
    Fail(path, "attribute corruption_rate " + Str(a.corruption_rate) + " is not in [0, 1]");
  a.corruption_seed = ReadIntAttribute(file, "corruption_seed", path);
  a.split_seed = ReadIntAttribute(file, "split_seed", path);
  return info;
}

// --- Datasets -------------------------------------------------------------------------------

template <typename T>
hid_t MemType();
template <>
hid_t MemType<std::int32_t>() {
  return H5T_NATIVE_INT32;
}
template <>
hid_t MemType<std::int64_t>() {
  return H5T_NATIVE_INT64;
}
template <>
hid_t MemType<float>() {
  return H5T_NATIVE_FLOAT;
}

template <typename T>
hid_t FileType();
template <>
hid_t FileType<std::int32_t>() {
  return H5T_STD_I32LE;
}
template <>
hid_t FileType<std::int64_t>() {
  return H5T_STD_I64LE;
}
template <>
hid_t FileType<float>() {
  return H5T_IEEE_F32LE;
}

template <typename T>
H5T_class_t ClassOf() {
  return std::is_floating_point<T>::value ? H5T_FLOAT : H5T_INTEGER;
}

template <typename T>
void WriteArray(hid_t group, const std::string& split, const char* name, int rank,
                const hsize_t* dims, const T* values, const std::string& path) {
  H5Handle space(H5Screate_simple(rank, dims, nullptr), H5Sclose);
  H5Handle set(
      H5Dcreate2(group, name, FileType<T>(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      H5Dclose);
  if (!set.ok()) FailAt(path, split, name, "cannot create dataset");
  hsize_t count = 1;
  for (int i = 0; i < rank; ++i) count *= dims[i];
  if (count > 0 && H5Dwrite(set.get(), MemType<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
    FailAt(path, split, name, "cannot write dataset");
}

template <typename T>
void WriteVector(hid_t group, const std::string& split, const char* name, const std::vector<T>& v,
                 const std::string& path) {
  const hsize_t dims[1] = {static_cast<hsize_t>(v.size())};
  WriteArray(group, split, name, 1, dims, v.data(), path);
}

// An open dataset of one split with its dimensions, checked for rank and type class.
struct OpenSet {
  H5Handle set;
  hsize_t dims[2] = {0, 0};
};

bool Exists(hid_t group, const char* name) { return H5Lexists(group, name, H5P_DEFAULT) > 0; }

// Whether the file can hold the entries `set` declares: at most the file's size for a
// contiguous dataset (what WriteDataset makes), 1032 times it (deflate's best ratio) for a
// chunked one. A damaged or forged file may declare far more than it holds, and the readers
// allocate what the dimensions say. On false, `why` says what was found.
bool FileCanHold(hid_t set, hid_t type, const hsize_t* dims, int rank, std::string* why) {
  const hsize_t element = H5Tget_size(type);
  hsize_t bytes = element;
  std::string shape;
  bool overflow = element == 0;
  for (int i = 0; i < rank; ++i) {
    if (dims[i] == 0) return true;
    shape += (i ? " x " : "") + std::to_string(dims[i]);
    if (!overflow && bytes > std::numeric_limits<hsize_t>::max() / dims[i]) overflow = true;
    bytes *= dims[i];
  }
  H5Handle file(H5Iget_file_id(set), H5Fclose);
  hsize_t file_size = 0;
  if (!file.ok() || H5Fget_filesize(file.get(), &file_size) < 0) file_size = 0;
  H5Handle plist(H5Dget_create_plist(set), H5Pclose);
  const bool contiguous = plist.ok() && H5Pget_layout(plist.get()) == H5D_CONTIGUOUS;
  if (!overflow && bytes / (contiguous ? 1 : 1032) <= file_size) return true;
  *why = "declares " + shape + " entries of " + std::to_string(element) +
         " bytes, more than the whole file (" + std::to_string(file_size) + " bytes) holds";
  return false;
}

template <typename T>
OpenSet Open(hid_t group, const std::string& split, const char* name, int rank,
             const std::string& path) {
  if (!Exists(group, name)) FailAt(path, split, name, "missing");
  OpenSet s{H5Handle(H5Dopen2(group, name, H5P_DEFAULT), H5Dclose)};
  if (!s.set.ok()) FailAt(path, split, name, "cannot open dataset");
  H5Handle space(H5Dget_space(s.set.get()), H5Sclose);
  const int got_rank = H5Sget_simple_extent_ndims(space.get());
  if (got_rank != rank)
    FailAt(path, split, name,
           "has " + std::to_string(got_rank) + " dimensions, expected " + std::to_string(rank));
  H5Sget_simple_extent_dims(space.get(), s.dims, nullptr);
  H5Handle type(H5Dget_type(s.set.get()), H5Tclose);
  if (H5Tget_class(type.get()) != ClassOf<T>())
    FailAt(path, split, name,
           std::string("is not of ") + (ClassOf<T>() == H5T_FLOAT ? "float" : "integer") + " type");
  std::string too_large;
  if (!FileCanHold(s.set.get(), type.get(), s.dims, rank, &too_large))
    FailAt(path, split, name, too_large);
  return s;
}

void ExpectLength(const OpenSet& s, hsize_t expected, const std::string& what,
                  const std::string& split, const char* name, const std::string& path) {
  if (s.dims[0] != expected)
    FailAt(path, split, name,
           "length " + std::to_string(s.dims[0]) + ", expected " + std::to_string(expected) + " (" +
               what + ")");
}

// Reads rows [start, start + count) of a 1-D or 2-D dataset (all columns) into `out`.
template <typename T>
void ReadRows(const OpenSet& s, int rank, hsize_t start, hsize_t count, T* out,
              const std::string& split, const char* name, const std::string& path) {
  if (count == 0 || (rank == 2 && s.dims[1] == 0)) return;
  H5Handle file_space(H5Dget_space(s.set.get()), H5Sclose);
  const hsize_t offset[2] = {start, 0};
  const hsize_t block[2] = {count, rank == 2 ? s.dims[1] : 1};
  if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset, nullptr, block, nullptr) < 0)
    FailAt(path, split, name, "cannot select rows");
  H5Handle mem_space(H5Screate_simple(rank, block, nullptr), H5Sclose);
  if (H5Dread(s.set.get(), MemType<T>(), mem_space.get(), file_space.get(), H5P_DEFAULT, out) < 0)
    FailAt(path, split, name, "cannot read");
}

void CheckLabels(const std::vector<std::int32_t>& labels, Index first_row, Index num_classes,
                 const std::string& split, const char* name, const std::string& path) {
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= num_classes)
      FailRow(path, split, name, first_row + static_cast<Index>(i),
              "label " + std::to_string(labels[i]) + " is not in [0, " +
                  std::to_string(num_classes) + ")");
}

// Checks indptr (local, starting anywhere) for rows first_row...: nondecreasing, within
// [lo, hi].
void CheckIndptr(const std::vector<std::int64_t>& indptr, Index first_row, std::int64_t hi,
                 const std::string& split, const std::string& path) {
  for (size_t i = 0; i < indptr.size(); ++i) {
    if (indptr[i] < 0 || indptr[i] > hi)
      FailRow(path, split, "indptr", first_row + static_cast<Index>(i),
              "value " + std::to_string(indptr[i]) + " is not in [0, nnz = " + std::to_string(hi) +
                  "]");
    if (i > 0 && indptr[i] < indptr[i - 1])
      FailRow(path, split, "indptr", first_row + static_cast<Index>(i),
              "value " + std::to_string(indptr[i]) + " is smaller than the previous " +
                  std::to_string(indptr[i - 1]));
  }
}

// Checks one CSR row's columns and values (entries [lo, hi) of indices/data).
void CheckCsrRow(const std::int32_t* indices, const float* data, std::int64_t lo, std::int64_t hi,
                 Index row, Index num_features, const std::string& split, const std::string& path) {
  for (std::int64_t k = lo; k < hi; ++k) {
    if (indices[k] < 0 || indices[k] >= num_features)
      FailRow(path, split, "indices", row,
              "column " + std::to_string(indices[k]) + " is not in [0, " +
                  std::to_string(num_features) + ")");
    if (k > lo && indices[k] <= indices[k - 1])
      FailRow(path, split, "indices", row,
              "columns not increasing (" + std::to_string(indices[k]) + " after " +
                  std::to_string(indices[k - 1]) + ")");
    if (!std::isfinite(data[k]))
      FailRow(path, split, "data", row,
              "value " + Str(data[k]) + " at column " + std::to_string(indices[k]));
  }
}

void CheckDenseRows(const FeatureMatrix& features, Index first_row, const std::string& split,
                    const std::string& path) {
  for (Index i = 0; i < features.rows(); ++i)
    for (Index j = 0; j < features.cols(); ++j)
      if (!std::isfinite(features(i, j)))
        FailRow(path, split, "features", first_row + i,
                "value " + Str(features(i, j)) + " at column " + std::to_string(j));
}

// The whole split in memory, checked before it is written.
void CheckForWrite(const SplitShard& s, const std::string& split, const DatasetAttributes& a,
                   const std::string& path) {
  const Index n = static_cast<Index>(s.labels.size());
  if (s.csr != (a.storage == "csr"))
    Fail(path, split + ": " + (s.csr ? "csr" : "dense") + " rows in a file of storage '" +
                   a.storage + "'");
  CheckLabels(s.labels, 0, a.num_classes, split, "labels", path);
  if (!s.clean_labels.empty()) {
    if (static_cast<Index>(s.clean_labels.size()) != n)
      FailAt(path, split, "clean_labels",
             "length " + std::to_string(s.clean_labels.size()) + ", expected " + std::to_string(n) +
                 " (rows)");
    CheckLabels(s.clean_labels, 0, a.num_classes, split, "clean_labels", path);
  }
  if (!s.csr) {
    if (s.features.rows() != n || s.features.cols() != a.num_features)
      FailAt(path, split, "features",
             "shape " + std::to_string(s.features.rows()) + " x " +
                 std::to_string(s.features.cols()) + ", expected " + std::to_string(n) + " x " +
                 std::to_string(a.num_features));
    CheckDenseRows(s.features, 0, split, path);
    return;
  }
  if (static_cast<Index>(s.indptr.size()) != n + 1)
    FailAt(path, split, "indptr",
           "length " + std::to_string(s.indptr.size()) + ", expected " + std::to_string(n + 1) +
               " (rows + 1)");
  if (s.indptr[0] != 0) FailAt(path, split, "indptr", "does not start at 0");
  const std::int64_t nnz = static_cast<std::int64_t>(s.indices.size());
  CheckIndptr(s.indptr, 0, nnz, split, path);
  if (s.indptr.back() != nnz)
    FailAt(
        path, split, "indptr",
        "ends at " + std::to_string(s.indptr.back()) + ", expected nnz = " + std::to_string(nnz));
  if (s.data.size() != s.indices.size())
    FailAt(path, split, "data",
           "length " + std::to_string(s.data.size()) + ", expected nnz = " + std::to_string(nnz));
  for (Index i = 0; i < n; ++i)
    CheckCsrRow(s.indices.data(), s.data.data(), s.indptr[i], s.indptr[i + 1], i, a.num_features,
                split, path);
}

void WriteSplit(hid_t file, const SplitShard& s, const std::string& split,
                const DatasetAttributes& a, const std::string& path) {
  H5Handle group(H5Gcreate2(file, split.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!group.ok()) Fail(path, "cannot create group " + split);
  WriteVector(group.get(), split, "labels", s.labels, path);
  if (!s.clean_labels.empty())
    WriteVector(group.get(), split, "clean_labels", s.clean_labels, path);
  if (s.csr) {
    WriteVector(group.get(), split, "indptr", s.indptr, path);
    WriteVector(group.get(), split, "indices", s.indices, path);
    WriteVector(group.get(), split, "data", s.data, path);
  } else {
    const hsize_t dims[2] = {static_cast<hsize_t>(s.labels.size()),
                             static_cast<hsize_t>(a.num_features)};
    WriteArray(group.get(), split, "features", 2, dims, s.features.data(), path);
  }
}

// --- SHA-256 (FIPS 180-4) -------------------------------------------------------------------

class Sha256 {
 public:
  void Update(const unsigned char* p, size_t n) {
    total_ += n;
    while (n > 0) {
      const size_t take = std::min(n, sizeof(buf_) - buf_len_);
      std::memcpy(buf_ + buf_len_, p, take);
      buf_len_ += take, p += take, n -= take;
      if (buf_len_ == sizeof(buf_)) {
        Block(buf_);
        buf_len_ = 0;
      }
    }
  }

  std::string HexDigest() {
    const std::uint64_t bits = total_ * 8;
    const unsigned char pad = 0x80, zero = 0;
    Update(&pad, 1);
    while (buf_len_ != 56) Update(&zero, 1);
    unsigned char length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    Update(length, 8);
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    for (std::uint32_t word : h_)
      for (int shift = 28; shift >= 0; shift -= 4) out += kHex[(word >> shift) & 0xf];
    return out;
  }

 private:
  static std::uint32_t Rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void Block(const unsigned char* p) {
    static const std::uint32_t kK[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (std::uint32_t{p[4 * i]} << 24) | (std::uint32_t{p[4 * i + 1]} << 16) |
             (std::uint32_t{p[4 * i + 2]} << 8) | std::uint32_t{p[4 * i + 3]};
    for (int i = 16; i < 64; ++i) {
      const std::uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const std::uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6],
                  h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const std::uint32_t t1 =
          h + (Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[i] + w[i];
      const std::uint32_t t2 =
          (Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d, h_[4] += e, h_[5] += f, h_[6] += g, h_[7] += h;
  }

  std::uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  unsigned char buf_[64] = {};
  size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace

// --- Dataset files --------------------------------------------------------------------------

const std::vector<std::string>& SplitNames() {
  static const std::vector<std::string> names = {"train", "val", "test"};
  return names;
}

const SplitInfo& DatasetInfo::ForSplit(const std::string& split) const {
  if (split == "train") return train;
  if (split == "val") return val;
  if (split == "test") return test;
  throw std::invalid_argument("no split '" + split + "' (allowed: train, val, test)");
}

DatasetInfo ReadDatasetInfo(const std::string& path) {
  SilenceHdf5();
  H5Handle file = OpenReadOnly(path);
  DatasetInfo info = ReadAttributes(file.get(), path);
  const DatasetAttributes& a = info.attributes;
  for (const std::string& split : SplitNames()) {
    SplitInfo& s = split == "train" ? info.train : split == "val" ? info.val : info.test;
    if (!Exists(file.get(), split.c_str())) Fail(path, "no group " + split);
    H5Handle group(H5Gopen2(file.get(), split.c_str(), H5P_DEFAULT), H5Gclose);
    if (!group.ok()) Fail(path, "cannot open group " + split);

    OpenSet labels = Open<std::int32_t>(group.get(), split, "labels", 1, path);
    const hsize_t n = labels.dims[0];
    s.rows = static_cast<Index>(n);
    std::vector<std::int32_t> values(n);
    ReadRows(labels, 1, 0, n, values.data(), split, "labels", path);
    CheckLabels(values, 0, a.num_classes, split, "labels", path);
    if (Exists(group.get(), "clean_labels")) {
      s.has_clean_labels = true;
      OpenSet clean = Open<std::int32_t>(group.get(), split, "clean_labels", 1, path);
      ExpectLength(clean, n, "rows", split, "clean_labels", path);
      ReadRows(clean, 1, 0, n, values.data(), split, "clean_labels", path);
      CheckLabels(values, 0, a.num_classes, split, "clean_labels", path);
    }

    if (!info.csr()) {
      OpenSet features = Open<float>(group.get(), split, "features", 2, path);
      if (features.dims[0] != n || features.dims[1] != static_cast<hsize_t>(a.num_features))
        FailAt(path, split, "features",
               "shape " + std::to_string(features.dims[0]) + " x " +
                   std::to_string(features.dims[1]) + ", expected " + std::to_string(n) + " x " +
                   std::to_string(a.num_features) + " (rows x num_features)");
      s.nnz = s.rows * a.num_features;
      continue;
    }
    OpenSet indptr = Open<std::int64_t>(group.get(), split, "indptr", 1, path);
    ExpectLength(indptr, n + 1, "rows + 1", split, "indptr", path);
    OpenSet indices = Open<std::int32_t>(group.get(), split, "indices", 1, path);
    OpenSet data = Open<float>(group.get(), split, "data", 1, path);
    const std::int64_t nnz = static_cast<std::int64_t>(indices.dims[0]);
    ExpectLength(data, indices.dims[0], "nnz, the length of indices", split, "data", path);
    std::vector<std::int64_t> offsets(n + 1);
    ReadRows(indptr, 1, 0, n + 1, offsets.data(), split, "indptr", path);
    if (offsets[0] != 0)
      FailAt(path, split, "indptr", "starts at " + std::to_string(offsets[0]) + ", not 0");
    CheckIndptr(offsets, 0, nnz, split, path);
    if (offsets.back() != nnz)
      FailAt(path, split, "indptr",
             "ends at " + std::to_string(offsets.back()) +
                 ", expected nnz = " + std::to_string(nnz) + " (the length of indices)");
    s.nnz = nnz;
  }
  return info;
}

SplitShard ReadSplitShard(const std::string& path, const std::string& split, Index begin,
                          Index end) {
  SilenceHdf5();
  if (!IsSplitName(split)) Fail(path, "no split '" + split + "' (allowed: train, val, test)");
  H5Handle file = OpenReadOnly(path);
  const DatasetInfo info = ReadAttributes(file.get(), path);
  const DatasetAttributes& a = info.attributes;
  if (!Exists(file.get(), split.c_str())) Fail(path, "no group " + split);
  H5Handle group(H5Gopen2(file.get(), split.c_str(), H5P_DEFAULT), H5Gclose);
  if (!group.ok()) Fail(path, "cannot open group " + split);

  SplitShard s;
  s.csr = info.csr();
  s.num_features = a.num_features;
  s.num_classes = a.num_classes;
  OpenSet labels = Open<std::int32_t>(group.get(), split, "labels", 1, path);
  const hsize_t n = labels.dims[0];
  s.num_rows = static_cast<Index>(n);
  if (begin < 0 || begin > end || end > s.num_rows)
    Fail(path, split + ": rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                   ") are not within [0, " + std::to_string(n) + ")");
  s.begin = begin, s.end = end;
  const hsize_t start = static_cast<hsize_t>(begin), count = static_cast<hsize_t>(end - begin);

  s.labels.resize(count);
  ReadRows(labels, 1, start, count, s.labels.data(), split, "labels", path);
  CheckLabels(s.labels, begin, a.num_classes, split, "labels", path);
  if (Exists(group.get(), "clean_labels")) {
    OpenSet clean = Open<std::int32_t>(group.get(), split, "clean_labels", 1, path);
    ExpectLength(clean, n, "rows", split, "clean_labels", path);
    s.clean_labels.resize(count);
    ReadRows(clean, 1, start, count, s.clean_labels.data(), split, "clean_labels", path);
    CheckLabels(s.clean_labels, begin, a.num_classes, split, "clean_labels", path);
  }

  if (!s.csr) {
    OpenSet features = Open<float>(group.get(), split, "features", 2, path);
    if (features.dims[0] != n || features.dims[1] != static_cast<hsize_t>(a.num_features))
      FailAt(path, split, "features",
             "shape " + std::to_string(features.dims[0]) + " x " +
                 std::to_string(features.dims[1]) + ", expected " + std::to_string(n) + " x " +
                 std::to_string(a.num_features) + " (rows x num_features)");
    s.features.resize(static_cast<Index>(count), a.num_features);
    ReadRows(features, 2, start, count, s.features.data(), split, "features", path);
    CheckDenseRows(s.features, begin, split, path);
    return s;
  }

  OpenSet indptr = Open<std::int64_t>(group.get(), split, "indptr", 1, path);
  ExpectLength(indptr, n + 1, "rows + 1", split, "indptr", path);
  OpenSet indices = Open<std::int32_t>(group.get(), split, "indices", 1, path);
  OpenSet data = Open<float>(group.get(), split, "data", 1, path);
  ExpectLength(data, indices.dims[0], "nnz, the length of indices", split, "data", path);
  const std::int64_t nnz = static_cast<std::int64_t>(indices.dims[0]);
  s.indptr.resize(count + 1);
  ReadRows(indptr, 1, start, count + 1, s.indptr.data(), split, "indptr", path);
  CheckIndptr(s.indptr, begin, nnz, split, path);
  if (begin == 0 && s.indptr[0] != 0)
    FailAt(path, split, "indptr", "starts at " + std::to_string(s.indptr[0]) + ", not 0");
  if (end == s.num_rows && s.indptr.back() != nnz)
    FailAt(path, split, "indptr",
           "ends at " + std::to_string(s.indptr.back()) +
               ", expected nnz = " + std::to_string(nnz) + " (the length of indices)");
  const std::int64_t first = s.indptr.front(), local_nnz = s.indptr.back() - first;
  for (auto& offset : s.indptr) offset -= first;
  s.indices.resize(local_nnz);
  s.data.resize(local_nnz);
  ReadRows(indices, 1, first, local_nnz, s.indices.data(), split, "indices", path);
  ReadRows(data, 1, first, local_nnz, s.data.data(), split, "data", path);
  for (Index i = 0; i < s.size(); ++i)
    CheckCsrRow(s.indices.data(), s.data.data(), s.indptr[i], s.indptr[i + 1], begin + i,
                a.num_features, split, path);
  return s;
}

std::vector<std::int64_t> ReadColumnCounts(const std::string& path, const std::string& split) {
  SilenceHdf5();
  if (!IsSplitName(split)) Fail(path, "no split '" + split + "' (allowed: train, val, test)");
  H5Handle file = OpenReadOnly(path);
  const DatasetInfo info = ReadAttributes(file.get(), path);
  if (!info.csr()) Fail(path, "storage is '" + info.attributes.storage + "', not csr");
  if (!Exists(file.get(), split.c_str())) Fail(path, "no group " + split);
  H5Handle group(H5Gopen2(file.get(), split.c_str(), H5P_DEFAULT), H5Gclose);
  if (!group.ok()) Fail(path, "cannot open group " + split);
  OpenSet indices = Open<std::int32_t>(group.get(), split, "indices", 1, path);
  const Index d = info.attributes.num_features;
  std::vector<std::int64_t> counts(d, 0);
  constexpr hsize_t kBlock = hsize_t{1} << 20;
  std::vector<std::int32_t> block;
  for (hsize_t start = 0; start < indices.dims[0]; start += kBlock) {
    const hsize_t count = std::min(kBlock, indices.dims[0] - start);
    block.resize(count);
    ReadRows(indices, 1, start, count, block.data(), split, "indices", path);
    for (const std::int32_t j : block) {
      if (j < 0 || j >= d)
        FailAt(path, split, "indices",
               "column " + std::to_string(j) + " is not in [0, " + std::to_string(d) +
                   ") (num_features)");
      ++counts[j];
    }
  }
  return counts;
}

void WriteDataset(const std::string& path, const Dataset& dataset) {
  SilenceHdf5();
  const DatasetAttributes& a = dataset.attributes;
  if (a.storage != "dense" && a.storage != "csr")
    Fail(path, "storage '" + a.storage + "' is not 'dense' or 'csr'");
  if (a.num_features < 1 || a.num_features > INT32_MAX)
    Fail(path, "num_features " + std::to_string(a.num_features) + " is not in [1, 2^31 - 1]");
  if (a.num_classes < 1 || a.num_classes > INT32_MAX)
    Fail(path, "num_classes " + std::to_string(a.num_classes) + " is not in [1, 2^31 - 1]");
  if (!(a.corruption_rate >= 0 && a.corruption_rate <= 1))
    Fail(path, "corruption_rate " + Str(a.corruption_rate) + " is not in [0, 1]");
  const SplitShard* splits[3] = {&dataset.train, &dataset.val, &dataset.test};
  for (int k = 0; k < 3; ++k) CheckForWrite(*splits[k], SplitNames()[k], a, path);

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    H5Handle file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file.ok()) Fail(path, "cannot create " + tmp);
    try {
      const int version = kFormatVersion;
      const std::int64_t d = a.num_features, c = a.num_classes;
      WriteScalarAttribute(file.get(), "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, &version,
                           path);
      WriteScalarAttribute(file.get(), "num_features", H5T_STD_I64LE, H5T_NATIVE_INT64, &d, path);
      WriteScalarAttribute(file.get(), "num_classes", H5T_STD_I64LE, H5T_NATIVE_INT64, &c, path);
      WriteStringAttribute(file.get(), "storage", a.storage, path);
      WriteStringAttribute(file.get(), "sources", a.sources, path);
      WriteStringAttribute(file.get(), "source_sha256", a.source_sha256, path);
      WriteScalarAttribute(file.get(), "corruption_rate", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                           &a.corruption_rate, path);
      WriteScalarAttribute(file.get(), "corruption_seed", H5T_STD_I64LE, H5T_NATIVE_INT64,
                           &a.corruption_seed, path);
      WriteScalarAttribute(file.get(), "split_seed", H5T_STD_I64LE, H5T_NATIVE_INT64, &a.split_seed,
                           path);
      for (int k = 0; k < 3; ++k) WriteSplit(file.get(), *splits[k], SplitNames()[k], a, path);
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

// --- Source files ---------------------------------------------------------------------------

struct SourceFile::Impl {
  enum class Format { kPlain, kGzip, kXz, kBzip2 };

  std::string path;
  std::FILE* file = nullptr;
  Format format = Format::kPlain;
  Sha256 sha;
  std::string digest;  // set once the whole file is hashed
  std::vector<unsigned char> in = std::vector<unsigned char>(1 << 20);
  size_t in_pos = 0, in_len = 0;
  bool raw_eof = false;
  bool done = false;  // the decompressor has produced everything
  z_stream z{};
  lzma_stream x = LZMA_STREAM_INIT;
  bz_stream b{};
  bool decoder_ready = false;

  ~Impl() {
    EndDecoder();
    if (file) std::fclose(file);
  }

  [[noreturn]] void Error(const std::string& what) const { Fail(path, what); }

  // Refills `in` when it is used up; false at the end of the file.
  bool Fill() {
    if (in_pos < in_len) return true;
    if (raw_eof) return false;
    in_pos = 0;
    in_len = std::fread(in.data(), 1, in.size(), file);
    if (in_len == 0) {
      if (std::ferror(file)) Error(std::string("read error: ") + std::strerror(errno));
      raw_eof = true;
      return false;
    }
    sha.Update(in.data(), in_len);
    return true;
  }

  const char* Name() const {
    switch (format) {
      case Format::kGzip:
        return "gzip";
      case Format::kXz:
        return "xz";
      case Format::kBzip2:
        return "bzip2";
      default:
        return "plain";
    }
  }

  void StartDecoder() {
    EndDecoder();
    switch (format) {
      case Format::kGzip:
        z = z_stream{};
        if (inflateInit2(&z, 15 + 16) != Z_OK) Error("cannot start the gzip decoder");
        break;
      case Format::kXz:
        x = LZMA_STREAM_INIT;
        if (lzma_stream_decoder(&x, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
          Error("cannot start the xz decoder");
        break;
      case Format::kBzip2:
        b = bz_stream{};
        if (BZ2_bzDecompressInit(&b, 0, 0) != BZ_OK) Error("cannot start the bzip2 decoder");
        break;
      default:
        return;
    }
    decoder_ready = true;
  }

  void EndDecoder() {
    if (!decoder_ready) return;
    switch (format) {
      case Format::kGzip:
        inflateEnd(&z);
        break;
      case Format::kXz:
        lzma_end(&x);
        break;
      case Format::kBzip2:
        BZ2_bzDecompressEnd(&b);
        break;
      default:
        break;
    }
    decoder_ready = false;
  }

  // One decoder call on the buffered input. Returns true at the end of a stream (gzip member,
  // bzip2 stream, or all xz streams).
  bool Step(char* out, size_t* out_len, size_t* consumed) {
    const size_t avail = in_len - in_pos;
    unsigned char* next = in.data() + in_pos;
    switch (format) {
      case Format::kGzip: {
        z.next_in = next, z.avail_in = static_cast<uInt>(avail);
        z.next_out = reinterpret_cast<Bytef*>(out), z.avail_out = static_cast<uInt>(*out_len);
        const int rc = inflate(&z, Z_NO_FLUSH);
        *consumed = avail - z.avail_in, *out_len -= z.avail_out;
        if (rc == Z_STREAM_END) return true;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
          Error(std::string("corrupt gzip data: ") + (z.msg ? z.msg : zError(rc)));
        return false;
      }
      case Format::kXz: {
        x.next_in = next, x.avail_in = avail;
        x.next_out = reinterpret_cast<uint8_t*>(out), x.avail_out = *out_len;
        const lzma_ret rc = lzma_code(&x, raw_eof && avail == 0 ? LZMA_FINISH : LZMA_RUN);
        *consumed = avail - x.avail_in, *out_len -= x.avail_out;
        if (rc == LZMA_STREAM_END) return true;
        if (rc == LZMA_BUF_ERROR) return false;  // no progress: the caller decides
        if (rc != LZMA_OK) {
          Error(std::string("corrupt xz data (") +
                (rc == LZMA_FORMAT_ERROR    ? "not the xz format"
                 : rc == LZMA_OPTIONS_ERROR ? "unsupported options"
                 : rc == LZMA_DATA_ERROR    ? "data error"
                 : rc == LZMA_MEM_ERROR     ? "out of memory"
                                            : "error " + std::to_string(rc)) +
                ")");
        }
        return false;
      }
      case Format::kBzip2: {
        b.next_in = reinterpret_cast<char*>(next), b.avail_in = static_cast<unsigned>(avail);
        b.next_out = out, b.avail_out = static_cast<unsigned>(*out_len);
        const int rc = BZ2_bzDecompress(&b);
        *consumed = avail - b.avail_in, *out_len -= b.avail_out;
        if (rc == BZ_STREAM_END) return true;
        if (rc != BZ_OK) Error("corrupt bzip2 data (error " + std::to_string(rc) + ")");
        return false;
      }
      default:
        Error("internal: no decoder");
    }
  }

  size_t Read(char* buf, size_t n) {
    size_t produced = 0;
    if (format == Format::kPlain) {
      while (produced < n && Fill()) {
        const size_t take = std::min(n - produced, in_len - in_pos);
        std::memcpy(buf + produced, in.data() + in_pos, take);
        produced += take, in_pos += take;
      }
      return produced;
    }
    while (produced < n && !done) {
      Fill();
      size_t out_len = std::min<size_t>(n - produced, 1u << 30), consumed = 0;
      const bool stream_end = Step(buf + produced, &out_len, &consumed);
      in_pos += consumed, produced += out_len;
      if (stream_end) {
        // xz handles concatenated streams itself; gzip members and bzip2 streams may follow.
        if (format == Format::kXz || !Fill()) {
          done = true;
        } else {
          StartDecoder();
        }
      } else if (consumed == 0 && out_len == 0 && in_pos == in_len && raw_eof) {
        Error(std::string("truncated ") + Name() + " data (the file ends inside the stream)");
      }
    }
    return produced;
  }
};

SourceFile::SourceFile(const std::string& path) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  m.file = std::fopen(path.c_str(), "rb");
  if (!m.file) Fail(path, std::string("cannot open: ") + std::strerror(errno));
  m.Fill();
  const unsigned char* p = m.in.data();
  const size_t len = m.in_len;
  if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
    m.format = Impl::Format::kGzip;
  } else if (len >= 6 && std::memcmp(p,
                                     "\xFD"
                                     "7zXZ\0",
                                     6) == 0) {
    m.format = Impl::Format::kXz;
  } else if (len >= 3 && std::memcmp(p, "BZh", 3) == 0) {
    m.format = Impl::Format::kBzip2;
  }
  m.StartDecoder();
}

SourceFile::~SourceFile() = default;

std::size_t SourceFile::Read(char* buf, std::size_t n) { return impl_->Read(buf, n); }

std::string SourceFile::Sha256Hex() {
  Impl& m = *impl_;
  if (m.digest.empty()) {
    m.in_pos = m.in_len;
    while (m.Fill()) m.in_pos = m.in_len;
    m.digest = m.sha.HexDigest();
  }
  return m.digest;
}

const std::string& SourceFile::path() const { return impl_->path; }

const char* SourceFile::format() const { return impl_->Name(); }

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace bilevel::io
