// Ever::Loop for Ruby (the API of the gem `ever`, github.com/digital-fabric/ever) on the project's
// own pull loop (backends/loop), so that the Ruby replicas of Ever's example servers
// (servers/ruby/ever_*.rb) run on the same loop as the C++ models. `require "ever"` loads it.
//
// API (Ever's):
//   Ever::Loop.new(backend = :libev)     backend :libev (Ever's own) or :epoll; ArgumentError else
//   #watch_io(key, io, read_write, oneshot)  read_write false = readable, true = writable
//   #watch_timer(key, timeout_s, interval_s) interval_s 0 = one-shot
//   #unwatch(key)                        no-op for a key that is not watched
//   #next_event                          blocks; the next key, or nil after #signal or #stop
//   #each { |key| ... }                  yields keys until #stop
//   #emit(key)                           any thread; wakes a blocked poll; emit(:stop) = #stop
//   #signal, #stop                       any thread
// Keys are any Ruby objects, compared with eql?/hash as Ever does; an event hands back the very
// object that was watched or emitted. Every key the loop may still hand out is marked for GC.
//
// Mapping. The pull loop's keys are 64-bit numbers: each watch and each emit gets a fresh id
// (ids are never reused, so a late event can never name a newer watch), and `entries` maps the id
// back to its Ruby key. A one-shot entry goes when its event is handed out; an unwatched entry is
// retired, because its event may already be in the current batch (and is then still handed out,
// as Ever does), and goes when the batch is used up.
//
// Threads and the GVL. Ruby runs one thread at a time under the GVL, so every method here runs
// serialised with the others except the blocking poll: next_event and each release the GVL only
// around the pull loop's poll round (when its batch is used up), with an unblocking function that
// wakes the loop (PullLoop::signal), as Ever's patched libev releases it around its backend poll.
// That function is async-signal-safe (an atomic store and a wake-up write) and is declared so
// (RB_NOGVL_UBF_ASYNC_SAFE): Ruby then calls it from its signal handler when a signal comes while
// the only thread polls. Undeclared, Ruby would start a helper thread for every poll of a process
// with one living thread and kill it after the poll (rb_nogvl): a thread created and joined per
// loop round, which Ever (RUBY_UBF_IO) does not pay. Hence:
//   - next_event/each run on one Ruby thread, the first that calls them (RuntimeError on another);
//   - watch_io/watch_timer/unwatch raise RuntimeError while another thread is blocked in the
//     poll (the pull loop is not thread-safe there); emit/signal/stop are fine from any thread.
//
// Rounds follow Ever's order (RoundOrder::emits_first): emitted keys queued are handed out without
// polling, and the GVL is kept for such a round, as Ever runs ev_run (and releases the lock) only
// when its queue of emitted events is empty. A replica that re-watches through an emitted command
// then pays what Ever pays per request (a read, a write, a poll), not a poll more and an
// epoll_ctl (backends/loop/pull_loop.h).
//
// Differences from the gem, each the pull loop's documented behaviour: a stopped loop stays
// stopped (Ever's #each clears the stop flag on entry); next_event with nothing watched blocks
// until an emit, signal or stop (Ever returns nil at once); a one-shot key counts as watched until
// its event is handed out (Ever frees it when libev reports it).
//
// Errors: TypeError/ArgumentError for bad arguments, IOError for a closed IO, RuntimeError for a
// duplicate key or an fd already watched for the same direction, SystemCallError when the kernel
// refuses an fd (epoll and a regular file). Nothing here lets a C++ exception reach Ruby, and no
// Ruby exception (a longjmp) crosses a frame holding a C++ object with a destructor.
#include <ruby.h>
#include <ruby/io.h>
#include <ruby/thread.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "backends/loop/pull_loop.h"

namespace {

using cb::loop::Key;
using cb::loop::PullLoop;
using cb::loop::WatchStatus;

// The largest timer accepted, in seconds (about 31 years): far below where a steady_clock
// deadline in nanoseconds would overflow, far above any real timeout.
constexpr double kMaxTimerSeconds = 1e9;
constexpr double kMicrosecondsPerSecond = 1e6;

ID g_id_stop;  // :stop, which #emit treats as #stop (as Ever does)

enum class EntryKind : std::uint8_t {
  watch_persistent,  // handed out every time it fires, until unwatched
  watch_oneshot,     // handed out once, then gone
  retired,           // unwatched; handed out if its event is in the current batch
  emitted,           // handed out once
};

struct Entry {
  VALUE key;
  EntryKind kind;
};

struct EverLoop {
  std::unique_ptr<PullLoop> loop;
  std::unordered_map<Key, Entry> entries;  // every id the loop may still hand out
  std::vector<Key> retired;                // ids retired since the current batch began
  VALUE key_ids = Qnil;                    // Hash: watched key -> Integer id
  VALUE loop_thread = Qnil;                // the Ruby thread that runs next_event/each
  bool polling = false;                    // loop_thread is in a poll without the GVL
  Key next_id = 1;
};

void loop_mark(void* ptr) {
  auto* s = static_cast<EverLoop*>(ptr);
  rb_gc_mark(s->key_ids);
  rb_gc_mark(s->loop_thread);
  for (const auto& [id, entry] : s->entries) rb_gc_mark(entry.key);
}

void loop_free(void* ptr) { delete static_cast<EverLoop*>(ptr); }

size_t loop_size(const void* ptr) {
  const auto* s = static_cast<const EverLoop*>(ptr);
  return sizeof(EverLoop) + s->entries.size() * (sizeof(Key) + sizeof(Entry) + 2 * sizeof(void*));
}

const rb_data_type_t kLoopType = {
    "Ever::Loop", {loop_mark, loop_free, loop_size, nullptr, {nullptr}}, nullptr, nullptr, RUBY_TYPED_FREE_IMMEDIATELY};

VALUE loop_alloc(VALUE klass) {
  VALUE self = TypedData_Wrap_Struct(klass, &kLoopType, nullptr);
  auto* s = new EverLoop();
  DATA_PTR(self) = s;
  s->key_ids = rb_hash_new();
  return self;
}

// The loop of self; RuntimeError if initialize has not run (Ever::Loop.allocate).
EverLoop* get_loop(VALUE self) {
  auto* s = static_cast<EverLoop*>(rb_check_typeddata(self, &kLoopType));
  if (s == nullptr || !s->loop) rb_raise(rb_eRuntimeError, "Ever::Loop is not initialized");
  return s;
}

VALUE loop_initialize(int argc, VALUE* argv, VALUE self) {
  rb_check_arity(argc, 0, 1);
  auto* s = static_cast<EverLoop*>(rb_check_typeddata(self, &kLoopType));
  if (s->loop) rb_raise(rb_eRuntimeError, "Ever::Loop is already initialized");
  cb::loop::Backend backend = cb::loop::Backend::libev;
  if (argc == 1) {
    VALUE name = SYMBOL_P(argv[0]) ? rb_sym2str(argv[0]) : argv[0];
    StringValue(name);
    const std::optional<cb::loop::Backend> parsed =
        cb::loop::parse_backend(std::string_view(RSTRING_PTR(name), RSTRING_LEN(name)));
    if (!parsed) rb_raise(rb_eArgError, "unknown Ever::Loop backend %" PRIsVALUE " (libev or epoll)", name);
    backend = *parsed;
  }
  int error = 0;
  try {
    s->loop = cb::loop::make_pull_loop(backend);
    s->loop->set_round_order(cb::loop::RoundOrder::emits_first);  // Ever's order (see the header)
  } catch (const std::system_error& e) {
    error = e.code().value();
  }
  if (!s->loop) rb_syserr_fail(error != 0 ? error : ENOMEM, "Ever::Loop.new");
  return self;
}

// RuntimeError unless the calling thread may drive the loop (binds the first one).
void check_loop_thread(EverLoop* s) {
  VALUE current = rb_thread_current();
  if (NIL_P(s->loop_thread)) {
    s->loop_thread = current;
  } else if (s->loop_thread != current) {
    rb_raise(rb_eRuntimeError,
             "Ever::Loop#next_event and #each run on one thread: the first that called them");
  }
}

// RuntimeError if another thread is blocked in the poll. Call it after the last call into Ruby
// code (a key's #hash may switch threads) and before touching the pull loop.
void check_not_polling(EverLoop* s) {
  if (s->polling) {
    rb_raise(rb_eRuntimeError,
             "Ever::Loop: cannot watch or unwatch while another thread polls the loop; do it on the loop thread");
  }
}

// The id a watched key maps to, if its entry is still a live watch.
std::optional<Key> watched_id(EverLoop* s, VALUE key) {
  VALUE idv = rb_hash_lookup2(s->key_ids, key, Qundef);
  if (idv == Qundef) return std::nullopt;
  const Key id = NUM2ULL(idv);
  auto it = s->entries.find(id);
  if (it == s->entries.end()) return std::nullopt;
  if (it->second.kind != EntryKind::watch_persistent && it->second.kind != EntryKind::watch_oneshot) {
    return std::nullopt;
  }
  return id;
}

void raise_duplicate_if_watched(EverLoop* s, VALUE key) {
  if (watched_id(s, key)) rb_raise(rb_eRuntimeError, "Ever::Loop: the key %+" PRIsVALUE " is already watched", key);
}

// Raises for a watch the pull loop refused; err is the errno of the refusal.
void raise_watch_status(WatchStatus status, int err, int fd) {
  switch (status) {
    case WatchStatus::ok:
      return;
    case WatchStatus::fd_busy:
      rb_raise(rb_eRuntimeError, "Ever::Loop: fd %d is already watched in this direction under another key", fd);
    case WatchStatus::invalid_argument:
      rb_raise(rb_eArgError, "Ever::Loop: invalid watch arguments");
    case WatchStatus::duplicate_key:  // fresh ids never collide; reported anyway
      rb_raise(rb_eRuntimeError, "Ever::Loop: internal key collision");
    case WatchStatus::system_error:
      rb_syserr_fail(err, "Ever::Loop#watch_io");
  }
}

// Records the new watch id under key (after the pull loop accepted it).
void record_watch(EverLoop* s, VALUE key, Key id, EntryKind kind) {
  s->entries.emplace(id, Entry{key, kind});
  rb_hash_aset(s->key_ids, key, ULL2NUM(id));
}

VALUE loop_watch_io(VALUE self, VALUE key, VALUE io, VALUE read_write, VALUE oneshot) {
  EverLoop* s = get_loop(self);
  VALUE file = rb_io_get_io(io);  // TypeError unless an IO or convertible with to_io
  rb_io_t* fptr;
  GetOpenFile(file, fptr);
  rb_io_check_closed(fptr);  // IOError "closed stream"
  const int fd = fptr->fd;
  const auto interest = RTEST(read_write) ? cb::loop::Interest::writable : cb::loop::Interest::readable;
  const bool once = RTEST(oneshot);
  raise_duplicate_if_watched(s, key);
  check_not_polling(s);
  const Key id = s->next_id++;
  const WatchStatus status = s->loop->watch_io(id, fd, interest, once);
  const int err = errno;
  raise_watch_status(status, err, fd);
  record_watch(s, key, id, once ? EntryKind::watch_oneshot : EntryKind::watch_persistent);
  return self;
}

// Seconds as microseconds; ArgumentError unless finite, >= 0 and <= kMaxTimerSeconds.
std::chrono::microseconds timer_us(VALUE seconds, const char* what) {
  const double s = NUM2DBL(seconds);  // TypeError for nil, strings and other non-numerics
  if (!std::isfinite(s) || s < 0 || s > kMaxTimerSeconds) {
    rb_raise(rb_eArgError, "Ever::Loop#watch_timer: %s must be between 0 and %g seconds", what, kMaxTimerSeconds);
  }
  return std::chrono::microseconds(std::llround(s * kMicrosecondsPerSecond));
}

VALUE loop_watch_timer(VALUE self, VALUE key, VALUE timeout, VALUE interval) {
  EverLoop* s = get_loop(self);
  const std::chrono::microseconds after = timer_us(timeout, "timeout");
  const std::chrono::microseconds repeat = timer_us(interval, "interval");
  raise_duplicate_if_watched(s, key);
  check_not_polling(s);
  const Key id = s->next_id++;
  const WatchStatus status = s->loop->watch_timer(id, after, repeat);
  raise_watch_status(status, errno, -1);
  record_watch(s, key, id, repeat.count() == 0 ? EntryKind::watch_oneshot : EntryKind::watch_persistent);
  return self;
}

VALUE loop_unwatch(VALUE self, VALUE key) {
  EverLoop* s = get_loop(self);
  const std::optional<Key> id = watched_id(s, key);
  if (!id) return self;
  check_not_polling(s);
  (void)s->loop->unwatch(*id);  // false: a one-shot that fired; its event is in the batch
  s->entries.find(*id)->second.kind = EntryKind::retired;
  s->retired.push_back(*id);
  rb_hash_delete(s->key_ids, key);
  return self;
}

VALUE loop_emit(VALUE self, VALUE key) {
  EverLoop* s = get_loop(self);
  if (SYMBOL_P(key) && SYM2ID(key) == g_id_stop) {
    s->loop->stop();
    return key;
  }
  const Key id = s->next_id++;
  s->entries.emplace(id, Entry{key, EntryKind::emitted});
  s->loop->emit(id);
  return key;
}

VALUE loop_signal(VALUE self) {
  get_loop(self)->loop->signal();
  return self;
}

VALUE loop_stop(VALUE self) {
  get_loop(self)->loop->stop();
  return self;
}

// ---- the poll --------------------------------------------------------------------------------

struct PollCall {
  PullLoop* loop;
  std::optional<Key> result;
  bool ran = false;  // false: Ruby did not call poll_without_gvl (an interrupt was pending)
};

void* poll_without_gvl(void* arg) {
  auto* call = static_cast<PollCall*>(arg);
  call->ran = true;
  call->result = call->loop->next_event();
  return nullptr;
}

// Ruby's unblocking function (Thread#kill, a trapped signal, exit): wakes the poll, which then
// returns nullopt if it found nothing. Async-signal-safe, any thread.
void unblock_poll(void* loop) { static_cast<PullLoop*>(loop)->signal(); }

// The Ruby key of a handed-out id, forgetting what is handed out once; false for an id with no
// entry (none can occur: ids are never reused).
bool take_key(EverLoop* s, Key id, VALUE* key) {
  auto it = s->entries.find(id);
  if (it == s->entries.end()) return false;
  const Entry entry = it->second;
  *key = entry.key;
  if (entry.kind == EntryKind::watch_persistent) return true;
  s->entries.erase(it);
  if (entry.kind == EntryKind::watch_oneshot) {
    // Free the key for a re-watch, unless it was already re-watched under a newer id.
    VALUE idv = rb_hash_lookup2(s->key_ids, entry.key, Qundef);
    if (idv != Qundef && NUM2ULL(idv) == id) rb_hash_delete(s->key_ids, entry.key);
  }
  return true;
}

// The next event's key, polling without the GVL when the batch is used up. Returns false when
// the poll ended without an event (signal, stop, or a Ruby interrupt to be handled by the caller).
bool next_key(EverLoop* s, VALUE* key) {
  for (;;) {
    Key id;
    if (s->loop->batch_exhausted()) {
      // No retired id can come out of later batches: their entries can go.
      for (Key r : s->retired) s->entries.erase(r);
      s->retired.clear();
      if (!s->loop->next_round_polls()) {
        // Emitted keys only: the round hands them out without polling, under the GVL (as Ever).
        const std::optional<Key> emitted = s->loop->next_event();
        if (!emitted) return false;  // stopped
        id = *emitted;
        if (take_key(s, id, key)) return true;
        continue;
      }
      PollCall call{s->loop.get(), std::nullopt};
      s->polling = true;
      // RB_NOGVL_INTR_FAIL (what rb_thread_call_without_gvl2 passes): no interrupt check inside,
      // which could raise while `polling` is set. It does not call the poll at all when any
      // interrupt is pending, the time-slice one included (set whenever another thread waits for
      // the GVL): that is no event and no wake-up, so the interrupt is handled here (a raise or
      // kill propagates, a time slice switches threads) and the poll tried again, instead of a
      // spurious nil. RB_NOGVL_UBF_ASYNC_SAFE: see "Threads and the GVL" above.
      rb_nogvl(poll_without_gvl, &call, unblock_poll, s->loop.get(), RB_NOGVL_INTR_FAIL | RB_NOGVL_UBF_ASYNC_SAFE);
      s->polling = false;
      if (!call.ran) {
        rb_thread_check_ints();
        continue;
      }
      if (!call.result) return false;
      id = *call.result;
    } else {
      id = *s->loop->next_event();  // from the current batch: never blocks, never empty
    }
    if (take_key(s, id, key)) return true;
  }
}

VALUE loop_next_event(VALUE self) {
  EverLoop* s = get_loop(self);
  check_loop_thread(s);
  VALUE key;
  if (next_key(s, &key)) return key;
  rb_thread_check_ints();  // runs trap handlers, Thread#raise and #kill now
  return Qnil;
}

VALUE loop_each(VALUE self) {
  rb_need_block();
  EverLoop* s = get_loop(self);
  check_loop_thread(s);
  while (!s->loop->stopped()) {
    VALUE key;
    if (next_key(s, &key)) {
      rb_yield(key);
    } else {
      rb_thread_check_ints();
    }
  }
  return self;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) void Init_ever(void) {
  g_id_stop = rb_intern("stop");
  VALUE mEver = rb_define_module("Ever");
  VALUE cLoop = rb_define_class_under(mEver, "Loop", rb_cObject);
  rb_define_alloc_func(cLoop, loop_alloc);
  rb_define_method(cLoop, "initialize", loop_initialize, -1);
  rb_define_method(cLoop, "watch_io", loop_watch_io, 4);
  rb_define_method(cLoop, "watch_timer", loop_watch_timer, 3);
  rb_define_method(cLoop, "unwatch", loop_unwatch, 1);
  rb_define_method(cLoop, "next_event", loop_next_event, 0);
  rb_define_method(cLoop, "each", loop_each, 0);
  rb_define_method(cLoop, "emit", loop_emit, 1);
  rb_define_method(cLoop, "signal", loop_signal, 0);
  rb_define_method(cLoop, "stop", loop_stop, 0);
}
