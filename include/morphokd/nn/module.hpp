// Modules wrap ops with their parameters and the state a backward pass needs. Naming
// follows PyTorch's state_dict so weights move between morphokd and PyTorch unchanged:
// "{prefix}.{index}.weight", ".bias", BatchNorm ".running_mean", ".running_var",
// ".num_batches_tracked".
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "morphokd/io/safetensors.hpp"
#include "morphokd/tensor.hpp"

namespace morphokd::nn {

struct Parameter {
  std::string name;  // local name: "weight", "bias"
  Tensor value;
  Tensor grad;  // same shape; overwritten by backward
};

class Module {
 public:
  virtual ~Module() = default;
  virtual std::string kind() const = 0;  // PyTorch class name, e.g. "Conv2d"
  virtual Shape output_shape(const Shape& in) const = 0;
  // y = f(x); keeps what backward needs (x and y themselves are kept by the caller).
  virtual void forward(const Tensor& x, Tensor& y) = 0;
  // From the last forward's x, y and dy: dx if non-null, and parameter gradients when
  // `param_grads` (all overwritten).
  virtual void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, bool param_grads) = 0;

  virtual std::vector<Parameter*> parameters() { return {}; }
  // Persistent non-trainable state, by local name (BatchNorm running statistics).
  virtual void buffers(std::map<std::string, Tensor*>& /*floats*/, std::map<std::string, std::int64_t*>& /*ints*/) {}

  void set_training(bool on) { training_ = on; }
  bool training() const { return training_; }
  // Guided backpropagation (localization maps): ReLUs pass back only positive gradients.
  // Other modules have no ReLU rule to change.
  virtual void set_guided(bool /*on*/) {}

 private:
  bool training_ = true;
};

// Modules applied in order; activations (one buffer per module output) and gradients are
// planned once per input shape and reused.
class Sequential {
 public:
  explicit Sequential(std::string prefix) : prefix_(std::move(prefix)) {}
  void add(std::unique_ptr<Module> m) { modules_.push_back(std::move(m)); }
  std::size_t size() const { return modules_.size(); }
  Module& at(std::size_t i) { return *modules_.at(i); }
  const std::string& prefix() const { return prefix_; }

  void train() { set_training(true); }
  void eval() { set_training(false); }
  bool training() const { return !modules_.empty() && modules_.front()->training(); }
  void set_guided(bool on);

  // Runs every module; returns the last output. Outputs stay readable through output(i)
  // until the next forward.
  const Tensor& forward(const Tensor& x);
  const Tensor& output(std::size_t i) const { return acts_.at(i); }
  Shape output_shape(const Shape& in, std::size_t upto) const;  // shape of output(upto)

  // Backward from the loss gradients of any module outputs (index -> dL/d output(i), each
  // added where it enters). Stops below the lowest index that needs it unless `dx` is
  // wanted; parameter gradients are overwritten when `param_grads`.
  void backward(const std::map<std::size_t, Tensor>& output_grads, bool param_grads, Tensor* dx);

  // Parameters with full names, e.g. {"features.0.weight", p}.
  std::vector<std::pair<std::string, Parameter*>> named_parameters();
  Index num_parameters();
  void zero_grad();
  // Fixed parameters (the teacher): their gradient buffers are released, and backward with
  // param_grads is refused.
  void freeze();

  // On: each ReLU writes over the output of the module before it, whose output(i) then reads
  // the ReLU's; one activation less per conv/ReLU pair. No backward reads its own output, and
  // ReLU's reads its input only by sign, so gradients keep their bits. Off (the default):
  // every output stays as computed, for audit dumps.
  void set_relu_in_place(bool on);
  // Frees the planned outputs and gradient buffers (training is over); the next forward
  // plans again.
  void release();

  SafetensorsFile state_dict();
  // Loads every parameter and buffer this container has from `file`; names it lacks or
  // shapes that differ are an Error naming `source`. Extra tensors are ignored.
  void load_state_dict(const SafetensorsFile& file, const std::string& source);

 private:
  void set_training(bool on);
  void plan(const Shape& in);
  void plan_grads();

  std::string prefix_;
  std::vector<std::unique_ptr<Module>> modules_;
  bool frozen_ = false;
  bool relu_in_place_ = false;
  Shape planned_for_, storage_for_;
  Tensor input_;                // the last forward's input (shares the caller's storage)
  std::vector<Tensor> storage_;  // storage_[i]: module i's output at storage_for_'s batch
  std::vector<Tensor> acts_;    // acts_[i]: output of module i, a leading slice of storage_[i]
  std::vector<Tensor> grads_;  // grads_[i]: dL/d acts_[i], a view into grad_buffers_[i % 2]
  Tensor grad_buffers_[2];
};

}  // namespace morphokd::nn
