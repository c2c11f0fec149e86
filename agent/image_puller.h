#pragma once
// Registry pulls off the event loop: each pull runs on its own thread (a pull
// is network and disk bound and can take minutes) and its result comes back
// on the loop through an eventfd, so pod workers never block on a registry.

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "images/image_store.h"
#include "sys/event_loop.h"
#include "sys/loop_queue.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {

class ImagePuller {
 public:
  using Done = std::function<void(Result<images::ImageRecord>)>;

  static Result<std::unique_ptr<ImagePuller>> create(EventLoop& loop, images::ImageStore& store,
                                                     images::RegistryOptions options);
  // Waits for the pulls still running (a pull cannot be cancelled midway).
  ~ImagePuller();

  // `done` runs on the loop. Callers whose interest may end first pass a
  // callback that checks a weak pointer.
  void pull(const std::string& ref, Done done);

 private:
  ImagePuller(images::ImageStore& store, images::RegistryOptions options,
              std::unique_ptr<LoopQueue> done)
      : store_(store), options_(std::move(options)), done_(std::move(done)) {}

  images::ImageStore& store_;
  images::RegistryOptions options_;
  std::unique_ptr<LoopQueue> done_;
  std::mutex mu_;
  std::condition_variable idle_;
  int running_ = 0;  // guarded by mu_
};

}  // namespace kernelet::agent
