// The tutorial's toy problem made real: a Linear(1,1) model, y = w * x + b, fitted by mean squared
// error with PyTorch's Adam update rule.
#ifndef HPSCHED_CLIENT_TOY_TRAINER_TOY_MODEL_H_
#define HPSCHED_CLIENT_TOY_TRAINER_TOY_MODEL_H_

#include <cstdint>
#include <vector>

namespace hpsched::toy {

struct Sample {
  double x;
  double y;
};

// `n` points of y = 2x - 1 plus small noise, x in [-1, 1]; the same points for the same seed.
std::vector<Sample> MakeData(int n, uint64_t seed);

// Linear(1,1): two parameters, initialised like PyTorch (uniform in [-1, 1] for one input) from
// `seed`.
struct Linear {
  double w = 0;
  double b = 0;
  static Linear Init(uint64_t seed);
};

struct Gradients {
  double loss = 0;  // Mean squared error.
  double dw = 0;
  double db = 0;
};

// Loss and gradients over the whole batch.
Gradients MseLoss(const Linear& model, const std::vector<Sample>& data);

// torch.optim.Adam (no weight decay, no amsgrad): betas (0.9, 0.999), eps 1e-8, with bias
// correction.
class Adam {
 public:
  explicit Adam(double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
      : beta1_(beta1), beta2_(beta2), eps_(eps) {}
  // One optimizer step with learning rate `lr`.
  void Step(const Gradients& grads, double lr, Linear* model);

 private:
  void Update(double grad, double lr, double* param, double* m, double* v) const;

  double beta1_, beta2_, eps_;
  int64_t t_ = 0;
  double m_w_ = 0, v_w_ = 0, m_b_ = 0, v_b_ = 0;
};

}  // namespace hpsched::toy

#endif  // HPSCHED_CLIENT_TOY_TRAINER_TOY_MODEL_H_
