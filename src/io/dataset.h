// Dataset files: the train/val/test splits of a classification set in one HDF5 file, made once
// by `bilevel convert` and read by every rank, each rank only its own block of rows.
//
// Layout (format version 1):
//   /train, /val, /test   groups, each with
//     labels        int32 [n]            classes 0..C-1
//     features      float32 [n, d]       row-major                     (storage "dense")
//     indptr        int64 [n + 1]        starts at 0, nondecreasing    (storage "csr")
//     indices       int32 [nnz]          0-based columns, increasing within a row
//     data          float32 [nnz]
//     clean_labels  int32 [n]            train only, when the labels were corrupted
//   root attributes: format_version (int32 1), num_features (int64 d), num_classes (int64 C),
//   storage ("dense" or "csr"), sources (input file names joined by "; "), source_sha256 (their
//   sha256 hex digests, same order), corruption_rate (double), corruption_seed (int64),
//   split_seed (int64); a seed that a file's conversion did not use is 0.
// Features are stored as in the source (pixels as pixel/255); there is no bias column.
// Datasets are contiguous and uncompressed, so a block of rows is one read of its own bytes.
#ifndef BILEVEL_SRC_IO_DATASET_H_
#define BILEVEL_SRC_IO_DATASET_H_

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bilevel/types.h"
#include "io/result_file.h"  // IoError

namespace bilevel::io {

using FeatureMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The root attributes a converter chooses.
struct DatasetAttributes {
  Index num_features = 0;         // d
  Index num_classes = 0;          // C
  std::string storage = "dense";  // "dense" or "csr"
  std::string sources;            // input file names, "; "-separated
  std::string source_sha256;      // their sha256 hex digests, same order
  double corruption_rate = 0;     // p of the train-label corruption (0: none)
  std::int64_t corruption_seed = 0;
  std::int64_t split_seed = 0;
};

// Sizes of one split, as stored.
struct SplitInfo {
  Index rows = 0;
  Index nnz = 0;  // csr: stored entries; dense: rows * d
  bool has_clean_labels = false;
};

struct DatasetInfo {
  int format_version = 0;
  DatasetAttributes attributes;
  SplitInfo train, val, test;

  bool csr() const { return attributes.storage == "csr"; }
  // "train", "val" or "test"; throws std::invalid_argument for any other name.
  const SplitInfo& ForSplit(const std::string& split) const;
};

// Rows [begin, end) of one split. Exactly one of the two feature representations is filled:
// dense `features` (end - begin rows, num_features columns) or CSR (indptr of end - begin + 1
// entries starting at 0, indices and data of indptr.back() entries).
struct SplitShard {
  bool csr = false;
  FeatureMatrix features;
  std::vector<std::int64_t> indptr;
  std::vector<std::int32_t> indices;
  std::vector<float> data;
  std::vector<std::int32_t> labels;        // end - begin
  std::vector<std::int32_t> clean_labels;  // end - begin, or empty when the file has none
  Index num_features = 0;                  // d
  Index num_classes = 0;                   // C
  Index num_rows = 0;                      // rows of the whole split
  Index begin = 0, end = 0;                // global row range held

  Index size() const { return end - begin; }
};

// A whole dataset in memory, for WriteDataset. Each split is a SplitShard holding all its rows
// (begin 0, end = rows); num_features, num_classes and num_rows of the splits are not used.
struct Dataset {
  DatasetAttributes attributes;
  SplitShard train, val, test;
};

// The split names, in file order.
const std::vector<std::string>& SplitNames();

// Reads the attributes and the sizes of every split, and checks the whole file: every dataset
// present with its type and consistent lengths, indptr starting at 0, nondecreasing and ending
// at nnz, labels and clean labels in [0, C). Reads the labels and indptr, not the features.
// Throws IoError with one line naming the file, the dataset (e.g. "train/indptr") and the
// problem.
DatasetInfo ReadDatasetInfo(const std::string& path);

// Reads rows [begin, end) of `split` only (hyperslabs of labels, clean_labels and features;
// for CSR the indptr range, then only the indices/data those rows use, rebased to start at 0).
// Each rank passes its own block, BlockShard(rows, rank, ranks), and reads about its share of
// the bytes. Checks what it reads: finite values, column indices in range and increasing,
// labels in range; a problem throws IoError naming the file, the dataset and the row.
SplitShard ReadSplitShard(const std::string& path, const std::string& split, Index begin,
                          Index end);

// The number of stored entries of each column (feature) over every row of a CSR `split`:
// num_features counts, read a block of `indices` at a time. Every rank reads the whole
// column, so every rank gets the same counts. Throws IoError naming the file and the dataset
// when the split is not CSR or a column index is out of range.
std::vector<std::int64_t> ReadColumnCounts(const std::string& path, const std::string& split);

// Checks `dataset` (consistent sizes, storage, ranges, finite values), writes it to
// PATH.tmp.<pid>, fsyncs it and renames it over PATH; on any error the temporary file is
// removed and IoError names the file and the failing step.
void WriteDataset(const std::string& path, const Dataset& dataset);

// An input file of a converter, read as a stream of bytes: plain, gzip, xz or bzip2, told by
// its first bytes (not its name). Also gives the SHA-256 of the file's own bytes.
class SourceFile {
 public:
  // Throws IoError naming the file when it cannot be opened.
  explicit SourceFile(const std::string& path);
  ~SourceFile();
  SourceFile(const SourceFile&) = delete;
  SourceFile& operator=(const SourceFile&) = delete;

  // Up to n decompressed bytes into buf; 0 only at the end of the data. Throws IoError naming
  // the file on a read error or on corrupt or truncated compressed data.
  std::size_t Read(char* buf, std::size_t n);
  // Reads the rest of the file and returns the sha256 of all its bytes, as 64 hex digits.
  std::string Sha256Hex();

  const std::string& path() const;
  // "plain", "gzip", "xz" or "bzip2".
  const char* format() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The file name without its directory.
std::string BaseName(const std::string& path);

}  // namespace bilevel::io

#endif  // BILEVEL_SRC_IO_DATASET_H_
