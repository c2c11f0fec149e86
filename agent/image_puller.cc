#include "agent/image_puller.h"

#include <thread>

namespace kernelet::agent {

Result<std::unique_ptr<ImagePuller>> ImagePuller::create(EventLoop& loop, images::ImageStore& store,
                                                         images::RegistryOptions options) {
  TRY(auto done, LoopQueue::create(loop));
  return std::unique_ptr<ImagePuller>(new ImagePuller(store, std::move(options), std::move(done)));
}

ImagePuller::~ImagePuller() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return running_ == 0; });
}

void ImagePuller::pull(const std::string& ref, Done done) {
  {
    std::lock_guard lock(mu_);
    running_++;
  }
  std::thread([this, ref, done = std::move(done)]() mutable {
    auto r = std::make_shared<Result<images::ImageRecord>>(store_.pull(ref, options_));
    done_->post([done = std::move(done), r] { done(std::move(*r)); });
    std::lock_guard lock(mu_);
    running_--;
    idle_.notify_all();
  }).detach();
}

}  // namespace kernelet::agent
