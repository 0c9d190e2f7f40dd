#include "io/hdf5_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

namespace bilevel::io {

namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  throw IoError(path + ": " + what);
}

herr_t CollectName(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

herr_t CollectAttribute(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

H5Handle OpenAttribute(hid_t loc, const std::string& name, const std::string& path) {
  if (H5Aexists(loc, name.c_str()) <= 0) Fail(path, "no attribute '" + name + "'");
  H5Handle attr(H5Aopen(loc, name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!attr.ok()) Fail(path, "cannot open attribute '" + name + "'");
  return attr;
}

void WriteScalarAttribute(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type,
                          const void* value, const std::string& path) {
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  if (H5Aexists(loc, name.c_str()) > 0) H5Adelete(loc, name.c_str());
  H5Handle attr(H5Acreate2(loc, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                H5Aclose);
  if (!attr.ok() || H5Awrite(attr.get(), mem_type, value) < 0)
    Fail(path, "cannot write attribute '" + name + "'");
}

}  // namespace

void SilenceHdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

H5Handle OpenForReading(const std::string& path) {
  SilenceHdf5();
  if (access(path.c_str(), R_OK) != 0) Fail(path, std::string("cannot read: ") + std::strerror(errno));
  if (H5Fis_hdf5(path.c_str()) <= 0) Fail(path, "not an HDF5 file");
  H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) Fail(path, "cannot open as HDF5");
  return file;
}

H5Handle CreateGroup(hid_t loc, const std::string& name, const std::string& path) {
  H5Handle group(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!group.ok()) Fail(path, "cannot create group '" + name + "'");
  return group;
}

H5Handle OpenGroup(hid_t loc, const std::string& name, const std::string& path) {
  if (H5Lexists(loc, name.c_str(), H5P_DEFAULT) <= 0) Fail(path, "no group '" + name + "'");
  H5Handle group(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), H5Gclose);
  if (!group.ok()) Fail(path, "'" + name + "' is not a group");
  return group;
}

void WriteVector(hid_t loc, const std::string& name, const Vec& v, const std::string& path) {
  const hsize_t dims[1] = {static_cast<hsize_t>(v.size())};
  H5Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  H5Handle set(H5Dcreate2(loc, name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT,
                          H5P_DEFAULT, H5P_DEFAULT),
               H5Dclose);
  if (!set.ok()) Fail(path, "cannot create dataset '" + name + "'");
  if (v.size() > 0 &&
      H5Dwrite(set.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
    Fail(path, "cannot write dataset '" + name + "'");
}

Vec ReadVector(hid_t loc, const std::string& name, const std::string& path) {
  if (H5Lexists(loc, name.c_str(), H5P_DEFAULT) <= 0) Fail(path, "no dataset '" + name + "'");
  H5Handle set(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!set.ok()) Fail(path, "'" + name + "' is not a dataset");
  H5Handle type(H5Dget_type(set.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_FLOAT)
    Fail(path, "dataset '" + name + "' is not floating point");
  H5Handle space(H5Dget_space(set.get()), H5Sclose);
  if (H5Sget_simple_extent_ndims(space.get()) != 1)
    Fail(path, "dataset '" + name + "' is not one-dimensional");
  hsize_t dims[1] = {0};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  // The file must be able to hold the entries declared (at most its size when contiguous, as
  // WriteVector makes them; 1032 times it when chunked: deflate's best ratio): a damaged or
  // forged file may declare far more, and the vector below is allocated at the declared size.
  const hsize_t element = H5Tget_size(type.get());
  H5Handle file(H5Iget_file_id(set.get()), H5Fclose);
  hsize_t file_size = 0;
  if (!file.ok() || H5Fget_filesize(file.get(), &file_size) < 0) file_size = 0;
  H5Handle plist(H5Dget_create_plist(set.get()), H5Pclose);
  const hsize_t ratio = plist.ok() && H5Pget_layout(plist.get()) == H5D_CONTIGUOUS ? 1 : 1032;
  if (dims[0] > 0 && (element == 0 || dims[0] > std::numeric_limits<hsize_t>::max() / element ||
                      dims[0] * element / ratio > file_size))
    Fail(path, "dataset '" + name + "' declares " + std::to_string(dims[0]) + " entries of " +
                   std::to_string(element) + " bytes, more than the whole file (" +
                   std::to_string(file_size) + " bytes) holds");
  Vec v(static_cast<Index>(dims[0]));
  if (v.size() > 0 &&
      H5Dread(set.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
    Fail(path, "cannot read dataset '" + name + "'");
  return v;
}

void WriteAttribute(hid_t loc, const std::string& name, const std::string& value,
                    const std::string& path) {
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), value.empty() ? 1 : value.size());
  H5Tset_strpad(type.get(), H5T_STR_NULLTERM);
  WriteScalarAttribute(loc, name, type.get(), type.get(), value.c_str(), path);
}

void WriteAttribute(hid_t loc, const std::string& name, std::int64_t value,
                    const std::string& path) {
  WriteScalarAttribute(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, path);
}

void WriteAttribute(hid_t loc, const std::string& name, double value, const std::string& path) {
  WriteScalarAttribute(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, path);
}

std::string ReadStringAttribute(hid_t loc, const std::string& name, const std::string& path) {
  H5Handle attr = OpenAttribute(loc, name, path);
  H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0)
    Fail(path, "attribute '" + name + "' is not a fixed-length string");
  std::vector<char> buf(H5Tget_size(type.get()) + 1, '\0');
  if (H5Aread(attr.get(), type.get(), buf.data()) < 0)
    Fail(path, "cannot read attribute '" + name + "'");
  return std::string(buf.data());
}

std::int64_t ReadIntAttribute(hid_t loc, const std::string& name, const std::string& path) {
  H5Handle attr = OpenAttribute(loc, name, path);
  H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_INTEGER) Fail(path, "attribute '" + name + "' is not an integer");
  std::int64_t value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    Fail(path, "cannot read attribute '" + name + "'");
  return value;
}

double ReadDoubleAttribute(hid_t loc, const std::string& name, const std::string& path) {
  H5Handle attr = OpenAttribute(loc, name, path);
  H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_FLOAT) Fail(path, "attribute '" + name + "' is not a number");
  double value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0)
    Fail(path, "cannot read attribute '" + name + "'");
  return value;
}

std::vector<std::string> LinkNames(hid_t group) {
  std::vector<std::string> names;
  hsize_t index = 0;
  H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &index, CollectName, &names);
  return names;
}

std::vector<std::string> AttributeNames(hid_t object) {
  std::vector<std::string> names;
  hsize_t index = 0;
  H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, &index, CollectAttribute, &names);
  return names;
}

std::string TemporaryPathFor(const std::string& path) {
  return path + ".tmp." + std::to_string(::getpid());
}

void MoveIntoPlace(const std::string& tmp, const std::string& path) {
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  const int saved = errno;
  if (fd >= 0) ::close(fd);
  if (!synced) {
    std::remove(tmp.c_str());
    Fail(path, std::string("cannot flush the new file to disk: ") + std::strerror(saved));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    Fail(path, "cannot move the new file into place: " + reason);
  }
  // The rename itself is durable once the directory is synced.
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace bilevel::io
