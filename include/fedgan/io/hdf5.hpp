// Small RAII wrappers over the HDF5 C API: files, datasets as tensors, attributes.
// Every failure becomes a fedgan::Error naming the file and the object.
#pragma once

#include <hdf5.h>
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fedgan::h5 {

// Owns one hid_t and closes it with the matching H5?close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : m_id(id), m_closer(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : m_id(o.m_id), m_closer(o.m_closer) { o.m_id = -1; }
  Handle& operator=(Handle&& o) noexcept;
  ~Handle() { reset(); }
  hid_t get() const { return m_id; }
  bool valid() const { return m_id >= 0; }
  void reset();

 private:
  hid_t m_id = -1;
  Closer m_closer = nullptr;
};

class File {
 public:
  enum class Mode { Read, ReadWrite, Create /* truncates */ };

  File(const std::string& path, Mode mode);
  const std::string& path() const { return m_path; }
  // Flushes and closes now (also done by the destructor); errors are reported here.
  void close();

  bool exists(const std::string& object) const;  // "/a/b/c": every link on the way is checked
  void create_group(const std::string& group);   // with missing parents
  std::vector<std::string> children(const std::string& group) const;
  bool is_group(const std::string& object) const;

  // Datasets: float32, float64, int64 and uint8 tensors; contiguous CPU copies are made.
  // `compress` enables chunked deflate (level 4) for large datasets.
  void write(const std::string& name, const torch::Tensor& tensor, bool compress = false);
  torch::Tensor read(const std::string& name) const;
  // Rows (indices along dimension 0) in the given order; only the selected rows are read
  // (one hyperslab read per run of consecutive rows), so a party never reads other rows.
  torch::Tensor read_rows(const std::string& name, const std::vector<std::int64_t>& rows) const;
  std::vector<std::int64_t> shape(const std::string& name) const;
  // A dataset filled in pieces (a streamed conversion): `shape` rows of float32, float64, int64
  // or uint8, chunked by rows (about 1 MiB a chunk, deflated with `compress`) and extendible
  // along dimension 0; write_rows fills rows [first, first + rows.size(0)) and shrink_rows cuts
  // it to its first `rows` rows (rows never filled are left out).
  void create_rows(const std::string& name, torch::ScalarType type,
                   const std::vector<std::int64_t>& shape, bool compress = false);
  void write_rows(const std::string& name, std::int64_t first, const torch::Tensor& rows);
  void shrink_rows(const std::string& name, std::int64_t rows);
  // The dataset's element type as a torch dtype; throws for types fedgan cannot read.
  torch::ScalarType dtype(const std::string& name) const;

  // Attributes of an object ("/" for the file itself).
  void set_attr(const std::string& object, const std::string& name, const std::string& value);
  void set_attr(const std::string& object, const std::string& name, std::int64_t value);
  void set_attr(const std::string& object, const std::string& name, double value);
  // A 1-D array of fixed-length strings (h5py reads a numpy array of bytes).
  void set_attr(const std::string& object, const std::string& name,
                const std::vector<std::string>& values);
  bool has_attr(const std::string& object, const std::string& name) const;
  std::optional<std::string> attr_string(const std::string& object, const std::string& name) const;
  std::optional<std::int64_t> attr_int(const std::string& object, const std::string& name) const;
  std::optional<double> attr_double(const std::string& object, const std::string& name) const;
  std::optional<std::vector<std::string>> attr_strings(const std::string& object,
                                                       const std::string& name) const;

 private:
  Handle open_object(const std::string& object) const;
  Handle open_dataset(const std::string& name) const;
  [[noreturn]] void fail(const std::string& what) const;
  // One scalar attribute, written (replacing any old one) or read; read returns false when absent.
  void write_scalar_attr(const std::string& object, const std::string& name, hid_t file_type,
                         hid_t mem_type, const void* value);
  bool read_scalar_attr(const std::string& object, const std::string& name, hid_t mem_type,
                        void* value, const char* expected) const;

  std::string m_path;
  Handle m_file;
};

// fedgan's file kinds carry a root attribute `format` ("fedgan-checkpoint-1", ...): whether
// the file has this one, and the one check every reader makes (checkpoint, evaluator, real
// statistics). require_format throws fedgan::Error "PATH: not a fedgan KIND (attribute 'format'
// is 'X' | missing, expected 'FORMAT'HINT)" when it differs.
bool has_format(const File& file, const std::string& format);
void require_format(const File& file, const std::string& format, const std::string& kind,
                    const std::string& hint = "");

// Silences HDF5's own error printing once per process (we raise our own messages).
void quiet_errors();

// True when `path` is an HDF5 file (signature check, no exception).
bool is_hdf5(const std::string& path);

}  // namespace fedgan::h5
