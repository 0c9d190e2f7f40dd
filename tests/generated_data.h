// Datasets that tests make themselves (never copies of the real ones): the attributes of a
// generated file, for splits the test fills in.
#pragma once

#include <string>

#include "bilevel/types.h"
#include "io/dataset.h"

namespace bilevel::testing {

// A dataset of d features and `classes` classes stored as `storage` ("dense" or "csr"), whose
// source is "generated"; its splits are empty.
inline io::Dataset GeneratedDataset(Index d, int classes, const std::string& storage) {
  io::Dataset data;
  data.attributes.num_features = d;
  data.attributes.num_classes = classes;
  data.attributes.storage = storage;
  data.attributes.sources = "generated";
  data.attributes.source_sha256 = "0";
  return data;
}

}  // namespace bilevel::testing
