// broadcast_tensors (see include/fedgan/comm/tensor_map.hpp).
#include "fedgan/comm/tensor_map.hpp"

#include <sstream>

namespace fedgan::comm {

void broadcast_tensors(Communicator& comm, std::map<std::string, torch::Tensor>& tensors,
                       int root) {
  // Header: one line per tensor, "name dtype rank d0 d1 ...".
  std::string header;
  if (comm.rank() == root) {
    std::ostringstream s;
    for (auto& [name, t] : tensors) {
      s << name << ' ' << static_cast<int>(t.scalar_type()) << ' ' << t.dim();
      for (auto d : t.sizes()) s << ' ' << d;
      s << '\n';
    }
    header = s.str();
  }
  comm.broadcast(header, root);
  if (comm.rank() != root) {
    tensors.clear();
    std::istringstream s(header);
    std::string name;
    int dtype = 0, dims = 0;
    while (s >> name >> dtype >> dims) {
      std::vector<std::int64_t> shape(static_cast<std::size_t>(dims));
      for (auto& d : shape) s >> d;
      tensors[name] = torch::empty(shape, torch::TensorOptions().dtype(
                                              static_cast<torch::ScalarType>(dtype)));
    }
  }
  for (auto& [name, t] : tensors) {
    if (comm.rank() == root) t = t.contiguous();
    comm.broadcast(t, root);
  }
}

}  // namespace fedgan::comm
