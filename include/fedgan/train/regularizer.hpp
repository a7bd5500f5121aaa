// Regularizer: a change to one party's local objective or step, hooked into LocalTrainer's
// step without the trainer knowing what it is: a loss term for G (knowledge distillation,
// transfer/kd_regularizer; cross-domain correspondence, transfer/cdc), a gradient term
// (FedProx's proximal term; EWC, transfer/ewc) or a move after the
// optimizer step (SCAFFOLD's control-variate correction, both in federated/client_strategy).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "fedgan/models/gan.hpp"

namespace fedgan::train {

enum class Net { Generator, Discriminator };

// What a regularizer learns before a party trains: the party, the round, and the global
// model the party starts from (the local model is a copy of it, plus the party's own BN
// statistics with --local-bn).
struct PartyStart {
  int party = 0;
  int round = 0;
  const models::Gan* global = nullptr;
};

class Regularizer {
 public:
  virtual ~Regularizer() = default;
  // Before the party's first step of the round.
  virtual void begin_party(const PartyStart&) {}
  // True: the trainer runs G through Generator::forward_features and hands g_loss_term the
  // hidden blocks' activations (otherwise `features` is empty).
  virtual bool wants_g_features() const { return false; }
  // A term added to G's loss (undefined: none). z and labels are G's inputs, fake = G(z, labels)
  // with its graph, features G's hidden activations on the way (with their graph).
  virtual torch::Tensor g_loss_term(const torch::Tensor& /*z*/, const torch::Tensor& /*labels*/,
                                    const torch::Tensor& /*fake*/,
                                    const std::vector<torch::Tensor>& /*features*/) {
    return {};
  }
  // After backward, before the optimizer step of `net`: may add to the flat gradient of its
  // parameters (`params` is the flat parameter view, `grad` its gradient).
  virtual void before_step(Net /*net*/, const torch::Tensor& /*params*/, torch::Tensor& /*grad*/) {}
  // After the optimizer step of `net`: may move the flat parameters.
  virtual void after_step(Net /*net*/, const torch::Tensor& /*params*/) {}
  // After the party's last step (its step count).
  virtual void end_party(std::int64_t /*steps*/) {}
};

}  // namespace fedgan::train
