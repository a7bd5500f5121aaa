// HDF5 RAII wrappers (see include/fedgan/io/hdf5.hpp).
#include "fedgan/io/hdf5.hpp"

#include "fedgan/core/error.hpp"

#include <algorithm>
#include <functional>
#include <numeric>

namespace fedgan::h5 {
namespace {

hid_t native_type(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return H5T_NATIVE_FLOAT;
    case torch::kFloat64: return H5T_NATIVE_DOUBLE;
    case torch::kInt64: return H5T_NATIVE_INT64;
    case torch::kUInt8: return H5T_NATIVE_UINT8;
    default:
      throw Error(std::string("HDF5: tensors of type ") + c10::toString(t) +
                  " cannot be written (expected float32, float64, int64 or uint8)");
  }
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '/') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

}  // namespace

void quiet_errors() {
  static bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

bool is_hdf5(const std::string& path) {
  quiet_errors();
  return H5Fis_hdf5(path.c_str()) > 0;
}

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    m_id = o.m_id;
    m_closer = o.m_closer;
    o.m_id = -1;
  }
  return *this;
}

void Handle::reset() {
  if (m_id >= 0 && m_closer) m_closer(m_id);
  m_id = -1;
}

File::File(const std::string& path, Mode mode) : m_path(path) {
  quiet_errors();
  hid_t id = -1;
  if (mode == Mode::Create) {
    // The HDF5 1.8 object format: an attribute above 64 KiB (the party table of 1,000 parties)
    // goes to dense storage there, while the default (earliest) format refuses it. Still
    // readable by every HDF5 since 1.8 and by h5py.
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18);
    id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
    if (id < 0) fail("cannot create the file (is the directory writable?)");
  } else {
    std::FILE* probe = std::fopen(path.c_str(), "rb");
    if (!probe) fail("no such file or not readable");
    std::fclose(probe);
    if (H5Fis_hdf5(path.c_str()) <= 0) fail("not an HDF5 file (or truncated)");
    id = H5Fopen(path.c_str(), mode == Mode::Read ? H5F_ACC_RDONLY : H5F_ACC_RDWR, H5P_DEFAULT);
    if (id < 0) fail("cannot open the HDF5 file (truncated or locked?)");
  }
  m_file = Handle(id, H5Fclose);
}

void File::close() {
  if (!m_file.valid()) return;
  const hid_t id = m_file.get();
  if (H5Fflush(id, H5F_SCOPE_LOCAL) < 0) fail("cannot flush (disk full?)");
  m_file.reset();
}

void File::fail(const std::string& what) const { throw Error(m_path + ": " + what); }

bool File::exists(const std::string& object) const {
  if (object == "/" || object.empty()) return true;
  std::string prefix;
  for (const auto& part : split_path(object)) {
    prefix += "/" + part;
    if (H5Lexists(m_file.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

void File::create_group(const std::string& group) {
  std::string prefix;
  for (const auto& part : split_path(group)) {
    prefix += "/" + part;
    if (H5Lexists(m_file.get(), prefix.c_str(), H5P_DEFAULT) > 0) continue;
    Handle g(H5Gcreate2(m_file.get(), prefix.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             H5Gclose);
    if (!g.valid()) fail("cannot create group " + prefix);
  }
}

std::vector<std::string> File::children(const std::string& group) const {
  if (!exists(group)) fail("missing group " + group);
  Handle g(H5Gopen2(m_file.get(), group.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.valid()) fail(group + " is not a group");
  H5G_info_t info;
  H5Gget_info(g.get(), &info);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t n = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0,
                                         H5P_DEFAULT);
    std::string name(static_cast<std::size_t>(n), '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), n + 1,
                       H5P_DEFAULT);
    names.push_back(name);
  }
  return names;
}

bool File::is_group(const std::string& object) const {
  if (!exists(object)) return false;
  H5O_info_t info;
#if H5_VERSION_GE(1, 12, 0)
  if (H5Oget_info_by_name3(m_file.get(), object.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
#else
  if (H5Oget_info_by_name2(m_file.get(), object.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
#endif
    return false;
  return info.type == H5O_TYPE_GROUP;
}

Handle File::open_object(const std::string& object) const {
  if (!exists(object)) fail("missing " + object);
  Handle h(H5Oopen(m_file.get(), object.c_str(), H5P_DEFAULT), H5Oclose);
  if (!h.valid()) fail("cannot open " + object);
  return h;
}

Handle File::open_dataset(const std::string& name) const {
  if (!exists(name)) fail("missing dataset " + name);
  Handle d(H5Dopen2(m_file.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.valid()) fail(name + " is not a dataset");
  return d;
}

void File::write(const std::string& name, const torch::Tensor& tensor, bool compress) {
  auto t = tensor.detach().to(torch::kCPU).contiguous();
  const hid_t mem_type = native_type(t.scalar_type());
  const auto parts = split_path(name);
  if (parts.size() > 1) {
    std::string parent;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) parent += "/" + parts[i];
    create_group(parent);
  }
  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                            : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
               H5Sclose);
  Handle plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (compress && !dims.empty() && t.numel() > 4096) {
    // Chunks of whole rows (about 1 MiB), so a row selection touches few chunks.
    std::vector<hsize_t> chunk = dims;
    const hsize_t row = std::max<hsize_t>(1, t.numel() / dims[0] * t.element_size());
    chunk[0] = std::clamp<hsize_t>((1 << 20) / row, 1, dims[0]);
    H5Pset_chunk(plist.get(), static_cast<int>(chunk.size()), chunk.data());
    H5Pset_deflate(plist.get(), 4);
  }
  if (exists(name)) H5Ldelete(m_file.get(), name.c_str(), H5P_DEFAULT);
  Handle d(H5Dcreate2(m_file.get(), name.c_str(), mem_type, space.get(), H5P_DEFAULT, plist.get(),
                      H5P_DEFAULT),
           H5Dclose);
  if (!d.valid()) fail("cannot create dataset " + name);
  if (t.numel() > 0 &&
      H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0)
    fail("cannot write dataset " + name + " (disk full?)");
}

void File::create_rows(const std::string& name, torch::ScalarType type,
                       const std::vector<std::int64_t>& shape, bool compress) {
  const hid_t mem_type = native_type(type);
  if (shape.empty() || shape[0] < 1) fail("dataset " + name + ": create_rows needs >= 1 row");
  const auto parts = split_path(name);
  if (parts.size() > 1) {
    std::string parent;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) parent += "/" + parts[i];
    create_group(parent);
  }
  std::vector<hsize_t> dims(shape.begin(), shape.end()), max_dims = dims;
  max_dims[0] = H5S_UNLIMITED;
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max_dims.data()),
               H5Sclose);
  // An extendible dataset must be chunked: whole rows, about 1 MiB a chunk (as write's).
  const hsize_t row =
      std::accumulate(dims.begin() + 1, dims.end(), hsize_t{1}, std::multiplies<hsize_t>()) *
      H5Tget_size(mem_type);
  std::vector<hsize_t> chunk = dims;
  chunk[0] = std::clamp<hsize_t>((1 << 20) / std::max<hsize_t>(row, 1), 1, dims[0]);
  Handle plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_chunk(plist.get(), static_cast<int>(chunk.size()), chunk.data());
  if (compress) H5Pset_deflate(plist.get(), 4);
  if (exists(name)) H5Ldelete(m_file.get(), name.c_str(), H5P_DEFAULT);
  Handle d(H5Dcreate2(m_file.get(), name.c_str(), mem_type, space.get(), H5P_DEFAULT, plist.get(),
                      H5P_DEFAULT),
           H5Dclose);
  if (!d.valid()) fail("cannot create dataset " + name);
}

void File::write_rows(const std::string& name, std::int64_t first, const torch::Tensor& rows) {
  auto t = rows.detach().to(torch::kCPU).contiguous();
  const auto dims = shape(name);
  if (t.dim() != static_cast<std::int64_t>(dims.size()) ||
      !std::equal(dims.begin() + 1, dims.end(), t.sizes().begin() + 1))
    fail("dataset " + name + ": write_rows got rows of another shape");
  if (first < 0 || first + t.size(0) > dims[0])
    fail("dataset " + name + ": rows [" + std::to_string(first) + ", " +
         std::to_string(first + t.size(0)) + ") outside [0, " + std::to_string(dims[0]) + ")");
  if (t.size(0) == 0) return;
  Handle d = open_dataset(name);
  Handle file_space(H5Dget_space(d.get()), H5Sclose);
  std::vector<hsize_t> start(dims.size(), 0), count(t.sizes().begin(), t.sizes().end());
  start[0] = static_cast<hsize_t>(first);
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                      nullptr);
  Handle mem_space(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr),
                   H5Sclose);
  const hid_t mem_type = native_type(t.scalar_type());
  if (H5Dwrite(d.get(), mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, t.data_ptr()) < 0)
    fail("cannot write rows of " + name + " (disk full?)");
}

void File::shrink_rows(const std::string& name, std::int64_t rows) {
  auto dims = shape(name);
  if (rows < 0 || rows > dims[0])
    fail("dataset " + name + ": cannot shrink " + std::to_string(dims[0]) + " rows to " +
         std::to_string(rows));
  Handle d = open_dataset(name);
  std::vector<hsize_t> size(dims.begin(), dims.end());
  size[0] = static_cast<hsize_t>(rows);
  if (H5Dset_extent(d.get(), size.data()) < 0)
    fail("cannot resize dataset " + name + " (not made by create_rows?)");
}

std::vector<std::int64_t> File::shape(const std::string& name) const {
  Handle d = open_dataset(name);
  Handle space(H5Dget_space(d.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return {dims.begin(), dims.end()};
}

torch::ScalarType File::dtype(const std::string& name) const {
  Handle d = open_dataset(name);
  Handle type(H5Dget_type(d.get()), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.get());
  const std::size_t size = H5Tget_size(type.get());
  if (cls == H5T_FLOAT) {
    if (size == 4) return torch::kFloat32;
    if (size == 8) return torch::kFloat64;
  } else if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type.get()) == H5T_SGN_2;
    if (size == 1 && !is_signed) return torch::kUInt8;
    if (size == 1) return torch::kInt8;
    if (size == 2) return torch::kInt16;
    if (size == 4) return torch::kInt32;
    if (size == 8) return torch::kInt64;
  }
  fail("dataset " + name + " has an unsupported element type (class " + std::to_string(cls) +
       ", " + std::to_string(size) + " bytes); expected uint8, integers or float32/float64");
}

torch::Tensor File::read(const std::string& name) const {
  const auto dims = shape(name);
  const auto type = dtype(name);
  auto out = torch::empty(dims, torch::TensorOptions().dtype(type));
  Handle d = open_dataset(name);
  hid_t mem_type = -1;
  switch (type) {
    case torch::kInt8: mem_type = H5T_NATIVE_INT8; break;
    case torch::kInt16: mem_type = H5T_NATIVE_INT16; break;
    case torch::kInt32: mem_type = H5T_NATIVE_INT32; break;
    default: mem_type = native_type(type);
  }
  if (out.numel() > 0 &&
      H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()) < 0)
    fail("cannot read dataset " + name + " (file truncated or corrupt?)");
  return out;
}

torch::Tensor File::read_rows(const std::string& name,
                              const std::vector<std::int64_t>& rows) const {
  auto dims = shape(name);
  if (dims.empty()) fail("dataset " + name + " is a scalar; rows cannot be selected");
  const auto type = dtype(name);
  if (type != torch::kUInt8 && type != torch::kFloat32 && type != torch::kFloat64 &&
      type != torch::kInt64)
    fail("dataset " + name + ": row reads support uint8, float32, float64 and int64");
  // Sorted unique rows, merged into runs of consecutive rows.
  std::vector<std::int64_t> sorted = rows;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  if (!sorted.empty() && (sorted.front() < 0 || sorted.back() >= dims[0]))
    fail("dataset " + name + ": row index out of range [0, " + std::to_string(dims[0]) + ")");
  auto out_dims = dims;
  out_dims[0] = static_cast<std::int64_t>(sorted.size());
  auto block = torch::empty(out_dims, torch::TensorOptions().dtype(type));
  // One read per run of consecutive rows: only the party's own rows leave the file. (A single
  // union-of-hyperslabs selection is slow in HDF5 1.10: each OR walks the whole selection.)
  if (!sorted.empty()) {
    Handle d = open_dataset(name);
    Handle file_space(H5Dget_space(d.get()), H5Sclose);
    std::vector<hsize_t> start(dims.size(), 0), count(dims.begin(), dims.end());
    const std::int64_t row_bytes = block.numel() / out_dims[0] * block.element_size();
    auto* dest = static_cast<char*>(block.data_ptr());
    for (std::size_t i = 0; i < sorted.size();) {
      std::size_t j = i + 1;
      while (j < sorted.size() && sorted[j] == sorted[j - 1] + 1) ++j;
      start[0] = static_cast<hsize_t>(sorted[i]);
      count[0] = static_cast<hsize_t>(j - i);
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                          nullptr);
      Handle mem_space(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr),
                       H5Sclose);
      if (H5Dread(d.get(), native_type(type), mem_space.get(), file_space.get(), H5P_DEFAULT,
                  dest + static_cast<std::int64_t>(i) * row_bytes) < 0)
        fail("cannot read rows of " + name + " (file truncated or corrupt?)");
      i = j;
    }
  }
  if (sorted == rows) return block;  // the loader asks in ascending order: no copy
  // Back to the caller's order (duplicates allowed).
  std::vector<std::int64_t> where(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i)
    where[i] = std::lower_bound(sorted.begin(), sorted.end(), rows[i]) - sorted.begin();
  return block.index_select(0, torch::tensor(where, torch::kInt64));
}

void File::set_attr(const std::string& object, const std::string& name,
                    const std::string& value) {
  Handle obj = open_object(object);
  if (H5Aexists(obj.get(), name.c_str()) > 0) H5Adelete(obj.get(), name.c_str());
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), std::max<std::size_t>(1, value.size()));
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(H5Acreate2(obj.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose);
  const std::string padded = value.empty() ? std::string(1, '\0') : value;
  if (!a.valid() || H5Awrite(a.get(), type.get(), padded.data()) < 0)
    fail("cannot write attribute " + object + "@" + name);
}

void File::write_scalar_attr(const std::string& object, const std::string& name,
                             hid_t file_type, hid_t mem_type, const void* value) {
  Handle obj = open_object(object);
  if (H5Aexists(obj.get(), name.c_str()) > 0) H5Adelete(obj.get(), name.c_str());
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(H5Acreate2(obj.get(), name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose);
  if (!a.valid() || H5Awrite(a.get(), mem_type, value) < 0)
    fail("cannot write attribute " + object + "@" + name);
}

void File::set_attr(const std::string& object, const std::string& name, std::int64_t value) {
  write_scalar_attr(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void File::set_attr(const std::string& object, const std::string& name, double value) {
  write_scalar_attr(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

void File::set_attr(const std::string& object, const std::string& name,
                    const std::vector<std::string>& values) {
  Handle obj = open_object(object);
  if (H5Aexists(obj.get(), name.c_str()) > 0) H5Adelete(obj.get(), name.c_str());
  std::size_t width = 1;
  for (const auto& v : values) width = std::max(width, v.size());
  // Fixed-length, null-padded: one block of values.size() x width bytes.
  std::string block(values.size() * width, '\0');
  for (std::size_t i = 0; i < values.size(); ++i)
    block.replace(i * width, values[i].size(), values[i]);
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), width);
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Handle a(H5Acreate2(obj.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose);
  if (!a.valid() || (n > 0 && H5Awrite(a.get(), type.get(), block.data()) < 0))
    fail("cannot write attribute " + object + "@" + name);
}

std::optional<std::vector<std::string>> File::attr_strings(const std::string& object,
                                                           const std::string& name) const {
  if (!has_attr(object, name)) return std::nullopt;
  Handle obj = open_object(object);
  Handle a(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(a.get()), H5Tclose);
  Handle space(H5Aget_space(a.get()), H5Sclose);
  if (H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0 ||
      H5Sget_simple_extent_ndims(space.get()) != 1)
    fail("attribute " + object + "@" + name + " is not a 1-D array of fixed-length strings");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  const std::size_t width = H5Tget_size(type.get());
  std::string block(static_cast<std::size_t>(n) * width, '\0');
  if (n > 0 && H5Aread(a.get(), type.get(), block.data()) < 0)
    fail("cannot read " + object + "@" + name);
  std::vector<std::string> out;
  for (hsize_t i = 0; i < n; ++i) {
    std::string v = block.substr(static_cast<std::size_t>(i) * width, width);
    v.erase(std::find(v.begin(), v.end(), '\0'), v.end());
    out.push_back(v);
  }
  return out;
}

bool File::has_attr(const std::string& object, const std::string& name) const {
  if (!exists(object)) return false;
  Handle obj = open_object(object);
  return H5Aexists(obj.get(), name.c_str()) > 0;
}

std::optional<std::string> File::attr_string(const std::string& object,
                                             const std::string& name) const {
  if (!has_attr(object, name)) return std::nullopt;
  Handle obj = open_object(object);
  Handle a(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(a.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING)
    fail("attribute " + object + "@" + name + " is not a string");
  if (H5Tis_variable_str(type.get()) > 0) {
    char* text = nullptr;
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    // HDF5 does not convert between ASCII and UTF-8 (h5py writes UTF-8): read as stored.
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    if (H5Aread(a.get(), mem.get(), &text) < 0) fail("cannot read " + object + "@" + name);
    std::string out = text ? text : "";
    H5free_memory(text);
    return out;
  }
  const std::size_t size = H5Tget_size(type.get());
  std::string out(size, '\0');
  if (H5Aread(a.get(), type.get(), out.data()) < 0) fail("cannot read " + object + "@" + name);
  out.erase(std::find(out.begin(), out.end(), '\0'), out.end());
  return out;
}

bool File::read_scalar_attr(const std::string& object, const std::string& name, hid_t mem_type,
                            void* value, const char* expected) const {
  if (!has_attr(object, name)) return false;
  Handle obj = open_object(object);
  Handle a(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
  if (H5Aread(a.get(), mem_type, value) < 0)
    fail("attribute " + object + "@" + name + " is not " + expected);
  return true;
}

std::optional<std::int64_t> File::attr_int(const std::string& object,
                                           const std::string& name) const {
  std::int64_t v = 0;
  if (!read_scalar_attr(object, name, H5T_NATIVE_INT64, &v, "an integer")) return std::nullopt;
  return v;
}

std::optional<double> File::attr_double(const std::string& object,
                                        const std::string& name) const {
  double v = 0;
  if (!read_scalar_attr(object, name, H5T_NATIVE_DOUBLE, &v, "a number")) return std::nullopt;
  return v;
}

bool has_format(const File& file, const std::string& format) {
  return file.attr_string("/", "format") == format;
}

void require_format(const File& file, const std::string& format, const std::string& kind,
                    const std::string& hint) {
  const auto found = file.attr_string("/", "format");
  if (found && *found == format) return;
  throw Error(file.path() + ": not a fedgan " + kind + " (attribute 'format' is " +
              (found ? "'" + *found + "'" : "missing") + ", expected '" + format + "'" + hint +
              ")");
}

}  // namespace fedgan::h5
