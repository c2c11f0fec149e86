#include "agent/image_puller.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <thread>

namespace kernelet::agent {

Result<std::unique_ptr<ImagePuller>> ImagePuller::create(EventLoop& loop, images::ImageStore& store,
                                                         images::RegistryOptions options) {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    return sysError("eventfd");
  }
  std::unique_ptr<ImagePuller> p(new ImagePuller(loop, store, std::move(options), UniqueFd(fd)));
  ImagePuller* self = p.get();
  TRY_VOID(loop.add(fd, EPOLLIN, [self](uint32_t) { self->drain(); }));
  return p;
}

ImagePuller::~ImagePuller() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return running_ == 0; });
  loop_.remove(efd_.get());
}

void ImagePuller::pull(const std::string& ref, Done done) {
  {
    std::lock_guard lock(mu_);
    running_++;
  }
  std::thread([this, ref, done = std::move(done)]() mutable {
    Result<images::ImageRecord> r = store_.pull(ref, options_);
    uint64_t one = 1;
    std::lock_guard lock(mu_);
    finished_.emplace_back(std::move(done), std::move(r));
    (void)!::write(efd_.get(), &one, sizeof one);
    running_--;
    idle_.notify_all();
  }).detach();
}

void ImagePuller::drain() {
  uint64_t n;
  (void)!::read(efd_.get(), &n, sizeof n);
  std::vector<std::pair<Done, Result<images::ImageRecord>>> ready;
  {
    std::lock_guard lock(mu_);
    ready.swap(finished_);
  }
  for (auto& [done, result] : ready) {
    done(std::move(result));
  }
}

}  // namespace kernelet::agent
