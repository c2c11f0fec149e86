#include "agent/runtime/image_puller.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>

#include "images/keyring.h"

namespace kernelet::agent {

// One reference being pulled or waiting for a worker.
struct PullJob {
  std::string key;  // ref and the credentials' digest
  std::string ref;
  ImagePuller::Credentials creds;
  bool running = false;
  std::map<uint64_t, ImagePuller::TimedDone> waiters;  // by ticket id, in request order
};

class ImagePuller::State {
 public:
  explicit State(PullFn pull) : pull(std::move(pull)) {}
  const PullFn pull;
  std::mutex mu;
  std::condition_variable work;  // a job was queued, or stopping
  // Everything below is guarded by mu.
  std::map<std::string, std::shared_ptr<PullJob>> jobs;  // queued or running, by key
  std::deque<std::shared_ptr<PullJob>> queue;            // not started, oldest first
  size_t running = 0;
  uint64_t next_id = 1;
  bool stopping = false;
};

ImagePuller::Ticket& ImagePuller::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    withdraw();
    state_ = std::move(other.state_);
    key_ = std::move(other.key_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void ImagePuller::Ticket::withdraw() {
  auto state = state_.lock();
  state_.reset();
  if (!state || id_ == 0) {
    return;
  }
  TimedDone dropped;  // destroyed outside the lock: it may own anything
  std::lock_guard lock(state->mu);
  auto it = state->jobs.find(key_);
  if (it == state->jobs.end()) {
    return;  // finished already
  }
  PullJob& job = *it->second;
  if (auto w = job.waiters.find(id_); w != job.waiters.end()) {
    dropped = std::move(w->second);
    job.waiters.erase(w);
  }
  if (job.waiters.empty() && !job.running) {
    // Nobody wants it and no worker has it yet: it never starts.
    std::erase(state->queue, it->second);
    state->jobs.erase(it);
  }
}

Result<std::unique_ptr<ImagePuller>> ImagePuller::create(EventLoop& loop, images::ImageStore& store,
                                                         images::RegistryOptions options,
                                                         int workers) {
  return create(
      loop,
      [&store, options = std::move(options)](const std::string& ref, const Credentials& creds) {
        images::RegistryOptions with = options;
        with.credentials = creds;
        return store.pull(ref, with);
      },
      workers);
}

Result<std::unique_ptr<ImagePuller>> ImagePuller::create(EventLoop& loop, PullFn pull,
                                                         int workers) {
  if (workers < 1) {
    return makeError("image puller", "",
                     "needs at least one worker, got " + std::to_string(workers));
  }
  TRY(auto done, LoopQueue::create(loop));
  std::unique_ptr<ImagePuller> p(
      new ImagePuller(std::make_shared<State>(std::move(pull)), std::move(done)));
  // The workers take no signals: the agent blocks SIGTERM and SIGINT to read
  // them from a signalfd, and a thread that left them unblocked would get
  // them delivered with their default action, ending the process. A new
  // thread inherits the mask of its creator, so block all around the creation.
  sigset_t all, saved;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &saved);
  for (int i = 0; i < workers; i++) {
    p->workers_.emplace_back([self = p.get()] { self->work(); });
  }
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  return p;
}

ImagePuller::~ImagePuller() {
  std::deque<std::shared_ptr<PullJob>> dropped;  // their waiters destroyed outside the lock
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
    dropped.swap(state_->queue);
    for (const auto& job : dropped) {
      state_->jobs.erase(job->key);
    }
  }
  state_->work.notify_all();
  for (std::thread& t : workers_) {
    t.join();
  }
  // done_ goes after the workers: a result they posted is dropped with it.
}

ImagePuller::Ticket ImagePuller::request(const std::string& ref, const Credentials& creds,
                                         TimedDone done) {
  std::string key = ref + "|" + images::credentialsFingerprint(creds);
  std::lock_guard lock(state_->mu);
  uint64_t id = state_->next_id++;
  auto& job = state_->jobs[key];
  if (!job) {
    job = std::make_shared<PullJob>();
    job->key = key;
    job->ref = ref;
    job->creds = creds;
    state_->queue.push_back(job);
    state_->work.notify_one();
  }
  job->waiters.emplace(id, std::move(done));
  return Ticket(state_, key, id);
}

void ImagePuller::pull(const std::string& ref, const Credentials& creds, TimedDone done) {
  // Not withdrawn: its waiter stays until the pull ends (or the puller goes).
  request(ref, creds, std::move(done)).release();
}

ImagePuller::Counts ImagePuller::counts() const {
  std::lock_guard lock(state_->mu);
  return {state_->queue.size(), state_->running};
}

std::vector<std::string> ImagePuller::pulling() const {
  std::lock_guard lock(state_->mu);
  std::vector<std::string> out;
  for (const auto& [key, job] : state_->jobs) {
    out.push_back(job->ref);
  }
  return out;
}

void ImagePuller::work() {
  for (;;) {
    std::shared_ptr<PullJob> job;
    {
      std::unique_lock lock(state_->mu);
      state_->work.wait(lock, [this] { return state_->stopping || !state_->queue.empty(); });
      if (state_->stopping) {
        return;
      }
      job = state_->queue.front();
      state_->queue.pop_front();
      job->running = true;
      state_->running++;
    }
    auto began = std::chrono::steady_clock::now();
    auto result = std::make_shared<Result<images::ImageRecord>>(state_->pull(job->ref, job->creds));
    std::chrono::nanoseconds took = std::chrono::steady_clock::now() - began;
    {
      std::lock_guard lock(state_->mu);
      state_->running--;
    }
    // On the loop: the job ends there, so a request() after this point starts
    // a new pull instead of joining one whose waiters were already called.
    done_->post([state = state_, job, result, took] {
      std::map<uint64_t, TimedDone> waiters;
      {
        std::lock_guard lock(state->mu);
        if (auto it = state->jobs.find(job->key); it != state->jobs.end() && it->second == job) {
          state->jobs.erase(it);
        }
        waiters.swap(job->waiters);
      }
      for (auto& [id, done] : waiters) {
        done(*result, took);
      }
    });
  }
}

}  // namespace kernelet::agent
