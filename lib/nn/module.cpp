#include "morphokd/nn/module.hpp"

#include <algorithm>

#include "morphokd/error.hpp"

namespace morphokd::nn {

void Sequential::set_training(bool on) {
  for (auto& m : modules_) m->set_training(on);
}

void Sequential::set_guided(bool on) {
  for (auto& m : modules_) m->set_guided(on);
}

Shape Sequential::output_shape(const Shape& in, std::size_t upto) const {
  Shape s = in;
  for (std::size_t i = 0; i <= upto && i < modules_.size(); ++i) s = modules_[i]->output_shape(s);
  return s;
}

void Sequential::plan(const Shape& in) {
  // Storage for the largest batch so far: a smaller batch (an epoch's last, a split's last)
  // runs in a leading slice of it, so alternating batch sizes allocate nothing.
  const bool fits = storage_.size() == modules_.size() && in.rank() == storage_for_.rank() &&
                    in[0] <= storage_for_[0] && storage_for_.with_batch(in[0]) == in;
  if (!fits) {
    release();  // gradient buffers too: planned by the first backward, scoring needs none
    Shape s = in;
    for (auto& m : modules_) {
      s = m->output_shape(s);
      const bool over_input = relu_in_place_ && !storage_.empty() && m->kind() == "ReLU";
      storage_.push_back(over_input ? storage_.back() : Tensor::empty_pages(s));  // a copy shares the storage
    }
    storage_for_ = in;
  }
  acts_.clear();
  grads_.clear();
  for (const Tensor& t : storage_) acts_.push_back(t.slice(0, in[0]));
  planned_for_ = in;
}

void Sequential::plan_grads() {
  Index largest = 0;
  for (const Tensor& a : storage_) largest = std::max(largest, a.numel());
  // Module i's backward reads grads_[i] and writes grads_[i - 1]: two buffers, alternating.
  for (Tensor& b : grad_buffers_) fit_capacity(b, largest);
  for (std::size_t i = 0; i < acts_.size(); ++i) grads_.push_back(Tensor::wrap(grad_buffers_[i % 2].data(), acts_[i].shape()));
}

const Tensor& Sequential::forward(const Tensor& x) {
  check(!modules_.empty(), prefix_ + ": forward of an empty Sequential");
  if (!(x.shape() == planned_for_) || acts_.size() != modules_.size()) plan(x.shape());
  input_ = x;
  for (std::size_t i = 0; i < modules_.size(); ++i) modules_[i]->forward(i == 0 ? x : acts_[i - 1], acts_[i]);
  return acts_.back();
}

void Sequential::backward(const std::map<std::size_t, Tensor>& output_grads, bool param_grads, Tensor* dx) {
  if (output_grads.empty()) return;
  check(!acts_.empty(), prefix_ + ": backward before forward");
  check(!(param_grads && frozen_), prefix_ + ": parameter gradients of a frozen network");
  if (grads_.empty()) plan_grads();
  const std::size_t top = output_grads.rbegin()->first;
  check(top < modules_.size(), prefix_ + ": gradient for a module output that does not exist");
  // Lowest module whose backward must run: 0 if dx is wanted, else the lowest with parameters.
  std::size_t lowest = top;
  if (dx) {
    lowest = 0;
  } else if (param_grads) {
    for (std::size_t i = 0; i <= top; ++i)
      if (!modules_[i]->parameters().empty()) {
        lowest = std::min(lowest, i);
        break;
      }
  }
  bool flowing = false;
  for (std::size_t i = top + 1; i-- > 0;) {
    if (auto it = output_grads.find(i); it != output_grads.end()) {
      check_shape(it->second, acts_[i].shape(), (prefix_ + " output gradient").c_str());
      if (flowing) {
        grads_[i].add_from(it->second);
      } else {
        grads_[i].copy_from(it->second);
        flowing = true;
      }
    }
    if (i < lowest) break;
    Tensor* below = i > 0 ? (i > lowest ? &grads_[i - 1] : nullptr) : dx;
    if (i == 0 && dx) check_shape(*dx, input_.shape(), (prefix_ + " input gradient").c_str());
    modules_[i]->backward(i == 0 ? input_ : acts_[i - 1], acts_[i], grads_[i], below, param_grads);
  }
}

std::vector<std::pair<std::string, Parameter*>> Sequential::named_parameters() {
  std::vector<std::pair<std::string, Parameter*>> out;
  for (std::size_t i = 0; i < modules_.size(); ++i)
    for (Parameter* p : modules_[i]->parameters())
      out.emplace_back(prefix_ + "." + std::to_string(i) + "." + p->name, p);
  return out;
}

Index Sequential::num_parameters() {
  Index n = 0;
  for (auto& [name, p] : named_parameters()) n += p->value.numel();
  return n;
}

void Sequential::zero_grad() {
  for (auto& [name, p] : named_parameters()) p->grad.fill(0.0f);
}

void Sequential::freeze() {
  frozen_ = true;
  for (auto& [name, p] : named_parameters()) p->grad = Tensor();
}

void Sequential::set_relu_in_place(bool on) {
  if (on != relu_in_place_) release();  // plan again
  relu_in_place_ = on;
}

void Sequential::release() {
  acts_.clear();
  grads_.clear();
  storage_.clear();
  for (Tensor& b : grad_buffers_) b = Tensor();
}

SafetensorsFile Sequential::state_dict() {
  SafetensorsFile f;
  for (std::size_t i = 0; i < modules_.size(); ++i) {
    const std::string base = prefix_ + "." + std::to_string(i) + ".";
    auto dims = [](const Tensor& t) { return std::vector<Index>(t.shape().dims().begin(), t.shape().dims().end()); };
    for (Parameter* p : modules_[i]->parameters()) f.tensors[base + p->name] = {StDType::f32, p->value.clone(), {}, dims(p->value)};
    std::map<std::string, Tensor*> floats;
    std::map<std::string, std::int64_t*> ints;
    modules_[i]->buffers(floats, ints);
    for (auto& [name, t] : floats) f.tensors[base + name] = {StDType::f32, t->clone(), {}, dims(*t)};
    for (auto& [name, v] : ints) f.tensors[base + name] = {StDType::i64, {}, {*v}, {}};
  }
  return f;
}

void Sequential::load_state_dict(const SafetensorsFile& file, const std::string& source) {
  auto load_float = [&](const std::string& name, Tensor& dst) {
    const Tensor& src = file.tensor(name, source);
    if (!(src.shape() == dst.shape()))
      fail(source + ": tensor " + quote(name) + " has shape " + src.shape().str() + ", expected " + dst.shape().str());
    dst.copy_from(src);
  };
  for (std::size_t i = 0; i < modules_.size(); ++i) {
    const std::string base = prefix_ + "." + std::to_string(i) + ".";
    for (Parameter* p : modules_[i]->parameters()) load_float(base + p->name, p->value);
    std::map<std::string, Tensor*> floats;
    std::map<std::string, std::int64_t*> ints;
    modules_[i]->buffers(floats, ints);
    for (auto& [name, t] : floats) load_float(base + name, *t);
    for (auto& [name, v] : ints) {
      const auto it = file.tensors.find(base + name);
      if (it == file.tensors.end()) fail(source + ": missing tensor " + quote(base + name) + "");
      if (it->second.stored != StDType::i64 || it->second.ints.size() != 1)
        fail(source + ": tensor " + quote(base + name) + " must be a single I64 value");
      *v = it->second.ints[0];
    }
  }
}

}  // namespace morphokd::nn
