// Hooks into the training step for instruments such as the gradient dynamics
// probe (train/probe.h). The trainer calls them in this order each step:
//   begin_step(step) -> forward -> backward -> after_backward() -> [clip] ->
//   before_update() -> optimizer.step() -> after_update(lr)
#pragma once

#include <cstdint>

namespace tg::train {

class StepObserver {
public:
    virtual ~StepObserver() = default;
    virtual void begin_step(int64_t step) = 0;
    virtual void after_backward() = 0;
    virtual void before_update() = 0;
    virtual void after_update(double lr) = 0;
};

}  // namespace tg::train
