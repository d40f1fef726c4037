#include "client/toy_trainer/toy_model.h"

#include <cmath>
#include <random>

namespace hpsched::toy {

std::vector<Sample> MakeData(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> x_dist(-1.0, 1.0);
  std::normal_distribution<double> noise(0.0, 0.05);
  std::vector<Sample> data;
  data.reserve(n);
  for (int i = 0; i < n; ++i) {
    const double x = x_dist(rng);
    data.push_back({x, 2.0 * x - 1.0 + noise(rng)});
  }
  return data;
}

Linear Linear::Init(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  Linear model;
  model.w = dist(rng);
  model.b = dist(rng);
  return model;
}

Gradients MseLoss(const Linear& model, const std::vector<Sample>& data) {
  Gradients g;
  const double n = static_cast<double>(data.size());
  for (const Sample& s : data) {
    const double err = model.w * s.x + model.b - s.y;
    g.loss += err * err / n;
    g.dw += 2.0 * err * s.x / n;
    g.db += 2.0 * err / n;
  }
  return g;
}

void Adam::Update(double grad, double lr, double* param, double* m, double* v) const {
  *m = beta1_ * *m + (1 - beta1_) * grad;
  *v = beta2_ * *v + (1 - beta2_) * grad * grad;
  const double bias_correction1 = 1 - std::pow(beta1_, static_cast<double>(t_));
  const double bias_correction2 = 1 - std::pow(beta2_, static_cast<double>(t_));
  const double step_size = lr / bias_correction1;
  const double denom = std::sqrt(*v) / std::sqrt(bias_correction2) + eps_;
  *param -= step_size * *m / denom;
}

void Adam::Step(const Gradients& grads, double lr, Linear* model) {
  ++t_;
  Update(grads.dw, lr, &model->w, &m_w_, &v_w_);
  Update(grads.db, lr, &model->b, &m_b_, &v_b_);
}

}  // namespace hpsched::toy
