// The entry point of a selector-family model (selector, selector-pool): one Model on the model's
// one listener (ListenerLayout::one), owned by a shared_ptr that the model's loop callbacks also
// hold, so the Model outlives every libev watcher that points into it. Model must offer
// Model(const server::Options&, int listen_fd) and int run(server::Control&, const shared_ptr<Model>&).
#pragma once

#include <memory>

#include "backends/server/model.h"

namespace cb::selector {

template <class Model>
int run_on_listener(const server::Options& opt, server::Control& control) {
  auto model = std::make_shared<Model>(opt, control.listeners().front());
  return model->run(control, model);
}

}  // namespace cb::selector
