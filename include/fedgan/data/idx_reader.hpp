// IDX files (the MNIST / Fashion-MNIST format), gzipped or plain, and the Fashion-MNIST loader.
#pragma once

#include <torch/torch.h>

#include <string>

#include "fedgan/core/choice.hpp"
#include "fedgan/data/dataset.hpp"

namespace fedgan::data {

// Where the Debian package dataset-fashion-mnist installs the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Reads an unsigned-byte IDX file of the given rank (magic 0x0000 0x08 rank, big-endian uint32
// dimensions, then the data) as a uint8 tensor. Reads gzipped and plain files alike (zlib's
// gzread). fedgan::Error naming the file for a missing, truncated or wrong-magic file, and for
// trailing bytes after the data.
torch::Tensor read_idx(const std::string& path, int expected_rank);

// --split of Fashion-MNIST: train | test.
enum class Split { Train, Test };
const ChoiceTable<Choice<Split>>& splits();
Split parse_split(const std::string& name);  // fedgan::Error naming --split otherwise
std::string to_string(Split split);

// Fashion-MNIST from `dir` ({train,t10k}-{images-idx3,labels-idx1}-ubyte, .gz or plain).
// Images come back as [N,1,28,28].
Dataset load_fashion_mnist(const std::string& dir, Split split);

}  // namespace fedgan::data
