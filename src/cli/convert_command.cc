#include "cli/convert_command.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <random>
#include <sstream>

#include "cli/option_parser.h"  // UsageError
#include "io/dataset.h"
#include "io/idx.h"
#include "io/libsvm.h"

namespace po = boost::program_options;

namespace bilevel::cli {

namespace {

constexpr int kUsageExit = 2;
constexpr int kErrorExit = 1;

struct IdxConfig {
  std::string images, labels, test_images, test_labels, output;
  long long n_train = 20000;  // the first n_train training images
  long long n_val = 5000;     // the next n_val
  double noise = 0;           // probability of corrupting a train label
  long long seed = 0;         // seed of the corruption
  bool help = false;
};

struct LibsvmConfig {
  std::string train, test, output;
  double val_fraction = 0.5;   // share of each class of the train file moved to val
  long long seed = 0;          // seed of the stratified split
  long long num_features = 0;  // 0: the largest index over both files
  bool help = false;
};

po::options_description DescribeIdx(IdxConfig* c) {
  po::options_description d("Options");
  // clang-format off
  d.add_options()
      ("help,h", po::bool_switch(&c->help), "print this help and exit")
      ("images", po::value(&c->images)->value_name("FILE"),
       "training images, IDX (magic 0x00000803), plain or .gz (required)")
      ("labels", po::value(&c->labels)->value_name("FILE"),
       "training labels, IDX (magic 0x00000801), plain or .gz (required)")
      ("test-images", po::value(&c->test_images)->value_name("FILE"),
       "test images (required); all of them form the test split")
      ("test-labels", po::value(&c->test_labels)->value_name("FILE"), "test labels (required)")
      ("n-train", po::value(&c->n_train)->default_value(c->n_train)->value_name("N"),
       "train split: the first N training images")
      ("n-val", po::value(&c->n_val)->default_value(c->n_val)->value_name("N"),
       "val split: the next N training images")
      ("noise", po::value(&c->noise)->default_value(c->noise)->value_name("P"),
       "replace each train label, with probability P, by a uniformly random other class, "
       "once; the originals are kept as train/clean_labels")
      ("seed", po::value(&c->seed)->default_value(c->seed)->value_name("S"),
       "seed of the label corruption")
      ("output", po::value(&c->output)->value_name("FILE.h5"), "the dataset file (required)");
  // clang-format on
  return d;
}

po::options_description DescribeLibsvm(LibsvmConfig* c) {
  po::options_description d("Options");
  // clang-format off
  d.add_options()
      ("help,h", po::bool_switch(&c->help), "print this help and exit")
      ("train", po::value(&c->train)->value_name("FILE"),
       "training samples, LIBSVM/svmlight text, plain, .gz, .xz or .bz2 (required); split "
       "into train and val")
      ("test", po::value(&c->test)->value_name("FILE"),
       "test samples (default: none, the test split has 0 rows)")
      ("val-fraction",
       po::value(&c->val_fraction)->default_value(c->val_fraction)->value_name("F"),
       "stratified split: per class, a seeded shuffle of its rows in the train file, the "
       "first round(F * count) go to val, the rest to train (both keep the file's order)")
      ("seed", po::value(&c->seed)->default_value(c->seed)->value_name("S"),
       "seed of the stratified split")
      ("num-features",
       po::value(&c->num_features)->default_value(c->num_features)->value_name("D"),
       "number of features; an index above it is an error (0: the largest index in the files)")
      ("output", po::value(&c->output)->value_name("FILE.h5"), "the dataset file (required)");
  // clang-format on
  return d;
}

std::string IdxHelp() {
  IdxConfig c;
  std::ostringstream out;
  out << "Usage: bilevel convert idx --images FILE --labels FILE --test-images FILE\n"
         "                          --test-labels FILE --output FILE.h5 [options]\n\n"
         "Makes a dense dataset file from IDX images and labels (MNIST, Fashion-MNIST):\n"
         "features pixel/255 (float32, no bias column), classes 0..max label.\n\n"
      << DescribeIdx(&c);
  return out.str();
}

std::string LibsvmHelp() {
  LibsvmConfig c;
  std::ostringstream out;
  out << "Usage: bilevel convert libsvm --train FILE [--test FILE] --output FILE.h5 [options]\n\n"
         "Makes a CSR dataset file from LIBSVM/svmlight files (1-based indices). The distinct\n"
         "label values of both files, sorted, become classes 0..C-1.\n\n"
      << DescribeLibsvm(&c);
  return out.str();
}

const char kConvertUsage[] =
    "Usage: bilevel convert FORMAT [options]\n\n"
    "Makes a dataset file (HDF5: train, val and test splits) for `bilevel solve`.\n\n"
    "Formats:\n"
    "  idx      IDX images and labels, MNIST-style ('bilevel convert idx --help')\n"
    "  libsvm   LIBSVM / svmlight text ('bilevel convert libsvm --help')\n";

void Parse(const std::vector<std::string>& args, const po::options_description& desc,
           const std::string& command) {
  po::variables_map vm;
  try {
    const po::positional_options_description no_positionals;
    po::store(po::command_line_parser(args).options(desc).positional(no_positionals).run(), vm);
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    throw UsageError("unknown option '" + e.get_option_name() + "'; 'bilevel convert " + command +
                     " --help' lists the allowed options");
  } catch (const po::too_many_positional_options_error&) {
    throw UsageError("unexpected argument; options are written --name value ('bilevel convert " +
                     command + " --help' lists them)");
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
}

void Require(const std::string& value, const char* flag) {
  if (value.empty()) throw UsageError(std::string("option --") + flag + " is required");
}

void CheckRange(bool ok, const char* flag, const std::string& value, const char* constraint) {
  if (!ok) throw UsageError(std::string("option --") + flag + ": " + value + " " + constraint);
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

// Uniform draws from the raw 64-bit output of mt19937_64 (which the standard fixes), so a
// seed gives the same dataset with every standard library.
class Random {
 public:
  explicit Random(std::uint64_t seed) : engine_(seed) {}
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  std::uint64_t Below(std::uint64_t n) {  // [0, n), n > 0, unbiased
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t v;
    do v = engine_();
    while (v >= limit);
    return v % n;
  }

 private:
  std::mt19937_64 engine_;
};

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "; " : "") + items[i];
  return out;
}

std::string Describe(const io::Dataset& d, double seconds) {
  const io::DatasetAttributes& a = d.attributes;
  std::string line = "(" + a.storage + ", " + std::to_string(a.num_features) + " features, " +
                     std::to_string(a.num_classes) + " classes): train " +
                     std::to_string(d.train.labels.size()) + ", val " +
                     std::to_string(d.val.labels.size()) + ", test " +
                     std::to_string(d.test.labels.size()) + " rows";
  if (!d.train.clean_labels.empty()) {
    size_t corrupted = 0;
    for (size_t i = 0; i < d.train.labels.size(); ++i)
      corrupted += d.train.labels[i] != d.train.clean_labels[i];
    line += "; " + std::to_string(corrupted) + " train labels corrupted (" +
            Num(static_cast<double>(corrupted) / std::max<size_t>(1, d.train.labels.size())) +
            ", p = " + Num(a.corruption_rate) + ")";
  }
  char time[48];
  std::snprintf(time, sizeof(time), "; %.2f s", seconds);
  return line + time;
}

// --- idx ------------------------------------------------------------------------------------

// Dense rows [begin, begin + count) of `images` as pixel/255.
void FillImages(const io::IdxImages& images, Index begin, Index count, const io::IdxLabels& labels,
                io::SplitShard* out) {
  const Index d = images.rows * images.cols;
  out->csr = false;
  out->features.resize(count, d);
  const std::uint8_t* src = images.pixels.data() + begin * d;
  float* dst = out->features.data();
  for (Index k = 0; k < count * d; ++k) dst[k] = static_cast<float>(src[k]) / 255.0f;
  out->labels.assign(labels.labels.begin() + begin, labels.labels.begin() + begin + count);
}

std::string ConvertIdx(const IdxConfig& c) {
  const auto start = std::chrono::steady_clock::now();
  const io::IdxImages images = io::ReadIdxImages(c.images);
  const io::IdxLabels labels = io::ReadIdxLabels(c.labels);
  const io::IdxImages test_images = io::ReadIdxImages(c.test_images);
  const io::IdxLabels test_labels = io::ReadIdxLabels(c.test_labels);
  if (static_cast<Index>(labels.labels.size()) != images.count)
    throw io::IoError(c.labels + ": " + std::to_string(labels.labels.size()) + " labels, but " +
                      c.images + " has " + std::to_string(images.count) + " images");
  if (static_cast<Index>(test_labels.labels.size()) != test_images.count)
    throw io::IoError(c.test_labels + ": " + std::to_string(test_labels.labels.size()) +
                      " labels, but " + c.test_images + " has " +
                      std::to_string(test_images.count) + " images");
  if (test_images.rows != images.rows || test_images.cols != images.cols)
    throw io::IoError(c.test_images + ": images of " + std::to_string(test_images.rows) + " x " +
                      std::to_string(test_images.cols) + " pixels, but " + c.images + " has " +
                      std::to_string(images.rows) + " x " + std::to_string(images.cols));
  if (c.n_train > images.count || c.n_val > images.count - c.n_train)
    throw io::IoError(c.images + ": --n-train " + std::to_string(c.n_train) + " + --n-val " +
                      std::to_string(c.n_val) + " = " + std::to_string(c.n_train + c.n_val) +
                      " is more than its " + std::to_string(images.count) + " images");
  int max_label = 0;
  for (std::uint8_t l : labels.labels) max_label = std::max<int>(max_label, l);
  for (std::uint8_t l : test_labels.labels) max_label = std::max<int>(max_label, l);
  const Index num_classes = max_label + 1;
  if (c.noise > 0 && num_classes < 2)
    throw io::IoError(c.labels + ": --noise needs at least 2 classes, the labels have " +
                      std::to_string(num_classes));

  io::Dataset d;
  io::DatasetAttributes& a = d.attributes;
  a.num_features = images.rows * images.cols;
  a.num_classes = num_classes;
  a.storage = "dense";
  a.sources = Join({io::BaseName(c.images), io::BaseName(c.labels), io::BaseName(c.test_images),
                    io::BaseName(c.test_labels)});
  a.source_sha256 = Join({images.sha256, labels.sha256, test_images.sha256, test_labels.sha256});
  a.corruption_rate = c.noise;
  a.corruption_seed = c.noise > 0 ? c.seed : 0;
  a.split_seed = 0;  // the split is by position
  FillImages(images, 0, c.n_train, labels, &d.train);
  FillImages(images, c.n_train, c.n_val, labels, &d.val);
  FillImages(test_images, 0, test_images.count, test_labels, &d.test);

  // MATH.md section 3: each train label, with probability p, becomes a uniformly random other
  // class, once. One draw decides, a second picks the class; rows in order.
  if (c.noise > 0) {
    d.train.clean_labels = d.train.labels;
    Random random(static_cast<std::uint64_t>(c.seed));
    for (auto& label : d.train.labels) {
      if (random.Uniform() >= c.noise) continue;
      const auto other = static_cast<std::int32_t>(random.Below(num_classes - 1));
      label = other < label ? other : other + 1;
    }
  }
  io::WriteDataset(c.output, d);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return Describe(d, seconds);
}

// --- libsvm ---------------------------------------------------------------------------------

// The CSR rows `rows` of `file`, with mapped labels.
void FillRows(const io::LibsvmData& file, const std::vector<Index>& rows,
              const std::vector<std::int32_t>& classes, io::SplitShard* out) {
  out->csr = true;
  out->indptr.assign(1, 0);
  out->indices.clear();
  out->data.clear();
  out->labels.clear();
  for (Index r : rows) {
    const std::int64_t lo = file.indptr[r], hi = file.indptr[r + 1];
    out->indices.insert(out->indices.end(), file.indices.begin() + lo, file.indices.begin() + hi);
    out->data.insert(out->data.end(), file.values.begin() + lo, file.values.begin() + hi);
    out->indptr.push_back(static_cast<std::int64_t>(out->indices.size()));
    out->labels.push_back(classes[r]);
  }
}

std::string ConvertLibsvm(const LibsvmConfig& c) {
  const auto start = std::chrono::steady_clock::now();
  const io::LibsvmData train = io::ReadLibsvm(c.train, c.num_features);
  io::LibsvmData test;
  if (!c.test.empty()) test = io::ReadLibsvm(c.test, c.num_features);
  if (train.rows() == 0) throw io::IoError(c.train + ": no samples");
  const Index num_features =
      c.num_features > 0 ? c.num_features : std::max(train.max_index, test.max_index);
  if (num_features == 0)
    throw io::IoError(c.train + ": no features (no index:value in any line); pass --num-features");

  // Classes: the sorted distinct label values of both files.
  std::vector<double> values(train.labels);
  values.insert(values.end(), test.labels.begin(), test.labels.end());
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  auto classes_of = [&](const io::LibsvmData& file) {
    std::vector<std::int32_t> out(file.labels.size());
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = static_cast<std::int32_t>(
          std::lower_bound(values.begin(), values.end(), file.labels[i]) - values.begin());
    return out;
  };
  const std::vector<std::int32_t> train_classes = classes_of(train),
                                  test_classes = classes_of(test);
  const Index num_classes = static_cast<Index>(values.size());

  // Stratified split: per class in order, a Fisher-Yates shuffle of its rows (file order in,
  // one generator for all classes); the first round(fraction * count) go to val.
  std::vector<std::vector<Index>> by_class(num_classes);
  for (Index r = 0; r < train.rows(); ++r) by_class[train_classes[r]].push_back(r);
  std::vector<char> to_val(train.rows(), 0);
  Random random(static_cast<std::uint64_t>(c.seed));
  for (auto& rows : by_class) {
    for (size_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[random.Below(i)]);
    const auto take = static_cast<size_t>(std::llround(c.val_fraction * rows.size()));
    for (size_t i = 0; i < take; ++i) to_val[rows[i]] = 1;
  }
  std::vector<Index> train_rows, val_rows, test_rows(test.rows());
  for (Index r = 0; r < train.rows(); ++r) (to_val[r] ? val_rows : train_rows).push_back(r);
  if (train_rows.empty())
    throw io::IoError(c.train + ": the split leaves no rows in train (" +
                      std::to_string(train.rows()) + " rows, --val-fraction " +
                      Num(c.val_fraction) + ")");
  for (Index r = 0; r < test.rows(); ++r) test_rows[r] = r;

  io::Dataset d;
  io::DatasetAttributes& a = d.attributes;
  a.num_features = num_features;
  a.num_classes = num_classes;
  a.storage = "csr";
  std::vector<std::string> names = {io::BaseName(c.train)}, digests = {train.sha256};
  if (!c.test.empty()) names.push_back(io::BaseName(c.test)), digests.push_back(test.sha256);
  a.sources = Join(names);
  a.source_sha256 = Join(digests);
  a.split_seed = c.seed;
  FillRows(train, train_rows, train_classes, &d.train);
  FillRows(train, val_rows, train_classes, &d.val);
  FillRows(test, test_rows, test_classes, &d.test);
  io::WriteDataset(c.output, d);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string label_map = "labels";
  for (size_t k = 0; k < values.size() && k < 4; ++k)
    label_map += (k ? ", " : " ") + Num(values[k]) + "->" + std::to_string(k);
  if (values.size() > 4) label_map += ", ...";
  return Describe(d, seconds) + "; " + label_map;
}

// Runs one format's conversion on this process: parses, converts, prints. Returns the exit
// code; errors get one line on stderr.
int Run(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    (args.empty() ? std::cerr : std::cout) << kConvertUsage << std::flush;
    return args.empty() ? kUsageExit : 0;
  }
  const std::string format = args[0];
  const std::string prefix = "bilevel convert " + format;
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (format != "idx" && format != "libsvm") {
    std::fprintf(stderr, "bilevel convert: error: unknown format '%s' (allowed: idx, libsvm)\n",
                 format.c_str());
    return kUsageExit;
  }
  IdxConfig idx;
  LibsvmConfig libsvm;
  try {
    if (format == "idx") {
      Parse(rest, DescribeIdx(&idx), format);
      if (idx.help) {
        std::cout << IdxHelp() << std::flush;
        return 0;
      }
      Require(idx.images, "images");
      Require(idx.labels, "labels");
      Require(idx.test_images, "test-images");
      Require(idx.test_labels, "test-labels");
      Require(idx.output, "output");
      CheckRange(idx.n_train >= 1, "n-train", std::to_string(idx.n_train), "must be >= 1");
      CheckRange(idx.n_val >= 0, "n-val", std::to_string(idx.n_val), "must be >= 0");
      CheckRange(idx.noise >= 0 && idx.noise <= 1, "noise", Num(idx.noise), "must be in [0, 1]");
      CheckRange(idx.seed >= 0, "seed", std::to_string(idx.seed), "must be >= 0");
    } else {
      Parse(rest, DescribeLibsvm(&libsvm), format);
      if (libsvm.help) {
        std::cout << LibsvmHelp() << std::flush;
        return 0;
      }
      Require(libsvm.train, "train");
      Require(libsvm.output, "output");
      CheckRange(libsvm.val_fraction >= 0 && libsvm.val_fraction < 1, "val-fraction",
                 Num(libsvm.val_fraction), "must be in [0, 1)");
      CheckRange(libsvm.seed >= 0, "seed", std::to_string(libsvm.seed), "must be >= 0");
      CheckRange(libsvm.num_features >= 0 && libsvm.num_features <= INT32_MAX, "num-features",
                 std::to_string(libsvm.num_features), "must be in [0, 2^31 - 1] (0: auto)");
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: error: %s\n", prefix.c_str(), e.what());
    return kUsageExit;
  }
  try {
    const std::string summary = format == "idx" ? ConvertIdx(idx) : ConvertLibsvm(libsvm);
    const std::string& output = format == "idx" ? idx.output : libsvm.output;
    std::cout << prefix << ": wrote " << output << " " << summary << std::endl;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", prefix.c_str(), e.what());
    return kErrorExit;
  }
  return 0;
}

}  // namespace

int Convert(const std::vector<std::string>& args, Communicator& comm) {
  int code = 0;
  if (comm.rank() == 0) code = Run(args);
  std::fflush(stderr);
  // The other ranks wait here for rank 0's outcome.
  Vec shared = Vec::Zero(1);
  shared[0] = code;
  comm.AllreduceSum(shared);
  return static_cast<int>(shared[0]);
}

}  // namespace bilevel::cli
