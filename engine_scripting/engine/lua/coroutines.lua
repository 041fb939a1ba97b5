-- coroutines.lua: the sandbox's coroutine.create, coroutine.resume, coroutine.wrap and
-- coroutine.close, and the `slots` list of the threads that may be running, which the watchdog
-- reads from another thread. Runs once per untrusted context as `local kit, argcheck = ...`;
-- kit.threads holds what sandbox.lua owns: `slots`, the main thread, the hook and the registry's
-- hook table. Returns {["coroutine.create"] = fn, ...} and `_begin`, run at the start of each call.
--
-- `slots` lists every coroutine resumed in this call that may still be running: a coroutine is
-- added when it is first resumed and leaves, at a compaction, only when it is neither running nor
-- resuming another (see `compact`); up to 16 made by coroutine.wrap are listed from creation until
-- they are dead or their function is garbage (see `sb_wrap`). So the running thread is always
-- listed, and a switch to a listed coroutine costs one comparison or table read in sb_resume, or
-- nothing for those 16.
local kit, argcheck = ...
local B, C, K = kit.base, kit.coroutine, kit.threads
local type, error, select, setmetatable = B.type, B.error, B.select, B.setmetatable
local co_create, co_resume, co_status, co_close, co_wrap =
  C.create, C.resume, C.status, C.close, C.wrap
local d_getupvalue = kit.debug.getupvalue
local typeerror = argcheck.typeerror
local slots, main, hook, hooktable, killed_threads, state =
  K.slots, K.main, K.hook, K.hooktable, K.killed_threads, K.state

-- Up to PERMANENT_CAPACITY coroutines made by coroutine.wrap keep their slot from creation until
-- they are dead (see sb_wrap), so that their calls need no wrapper; the rest of the capacity is
-- for coroutines nested inside one another.
local PERMANENT_CAPACITY = K.permanent_capacity
-- Every nested resume is a C call, so Lua's own limit of 200 nested C calls ("C stack overflow")
-- comes before this capacity runs out: "too many nested coroutines" cannot happen.
local SLOT_CAPACITY = K.slot_capacity
-- slots[1]: how many threads follow; slots[2 .. n + 1]: the threads. sandbox.lua fills the array
-- once (with `main` as filler); it is never resized, because the watchdog reads it.
local in_slots, top = {}, 0
local permanent, permanent_count = {}, 0   -- thread -> true: listed from creation (sb_wrap)
-- thread -> the function coroutine.wrap made for it, while the script can still call it: a
-- permanent thread whose function is garbage can only be resumed through sb_resume or sb_close,
-- which list it, so it gives its slot up.
local wrapper_of = setmetatable({}, {__mode = "v"})
local listed = main   -- a thread in `slots` (or `main`): sb_resume's one-comparison fast path
local compacted_for_wrap = false   -- sb_wrap compacts at most once per call
-- Threads that left `slots` stay referenced for this call and the next one: the watchdog may
-- still hold their address.
local pins, old_pins, pins_dirty, old_dirty = {}, {}, false, false

-- Whether a listed thread must stay listed: it runs or resumes another, or it holds a permanent
-- slot, is not dead and its function can still be called. Otherwise the permanent slot is freed.
local function stays(thread, status)
  if permanent[thread] then
    if status ~= "dead" and wrapper_of[thread] ~= nil then return true end
    permanent[thread] = nil
    permanent_count = permanent_count - 1
  end
  return status == "running" or status == "normal"
end

-- Keep in `slots` only the threads that must stay (above), and with `spare`, suspended ones
-- pushed since the last compaction (in_slots 1; they may well be resumed again: they stay one
-- more round, as in_slots 2); the rest move to pins. Entries only move down, and every entry is a
-- live thread at all times: the watchdog may read the array while this runs. No thread is listed
-- twice (`in_slots` guards every push). Between calls no thread runs, so only permanent ones need
-- their status read.
local function compact(between_calls, spare)
  listed = main
  local n = 0
  for i = 2, top + 1 do
    local thread = slots[i]
    local status = (between_calls and not permanent[thread]) and "suspended"
      or co_status(thread)
    local keep = stays(thread, status)
    if not keep and spare and status == "suspended" and in_slots[thread] == 1 then
      in_slots[thread], keep = 2, true
    end
    if keep then
      n = n + 1
      slots[n + 1] = thread
    else
      in_slots[thread] = nil
      pins[thread] = true
    end
  end
  for i = n + 2, top + 1 do slots[i] = main end
  pins_dirty = true
  state.dirty = true
  top = n
  slots[1] = n
  return n
end

-- Compacting once `slots` holds twice as many threads as stayed the last time (at least 32)
-- keeps the list the watchdog reads every poll short, at O(1) a push; when most pushes since are
-- of threads this call dropped (a working set that does not fit), the next one waits twice as long.
local compact_at, repushed = 32, 0
local function push(co)
  local n = top
  if n >= compact_at then
    local at = repushed * 2 > n and 2 * compact_at or 0
    n = compact(false, true)
    if n >= SLOT_CAPACITY then n = compact() end
    if n >= SLOT_CAPACITY then error("too many nested coroutines", 3) end
    if at < 2 * n then at = 2 * n end
    compact_at, repushed = at < 32 and 32 or at < SLOT_CAPACITY and at or SLOT_CAPACITY, 0
  end
  if pins[co] then repushed = repushed + 1 end
  n = n + 1
  slots[n + 1] = co
  in_slots[co] = 1
  top = n
  slots[1] = n
  state.dirty = true
end

-- The start of a call (sandbox.lua's begin_call runs it while state.dirty is set).
local function begin()
  if top > 0 then compact(true) end
  if pins_dirty or old_dirty then
    old_pins, pins = pins, {}
    old_dirty, pins_dirty = pins_dirty, false
  end
  compacted_for_wrap = false
  state.dirty = top > 0 or old_dirty
end

------------------------------------------------------------------------------------------------
-- threads get the hook function when created and a slot when first resumed
------------------------------------------------------------------------------------------------
local function sb_create(...)
  local f = ...
  if type(f) ~= "function" then typeerror(1, 1, "function", f, select("#", ...) >= 1) end
  local co = co_create(f)
  hooktable[co] = hook
  return co
end

-- `listed` is a thread in `slots` (compact resets it): resuming it again costs one comparison.
-- It is `main` or a thread, so a value of another type never passes that comparison.
local function sb_resume(...)
  local co = ...
  if co ~= listed then
    if in_slots[co] == nil then
      if type(co) ~= "thread" then typeerror(1, 1, "thread", co, select("#", ...) >= 1) end
      push(co)
    end
    listed = co
  end
  return co_resume(...)
end

local function sb_close(...)
  local co = ...
  if type(co) ~= "thread" then typeerror(1, 1, "thread", co, select("#", ...) >= 1) end
  -- a thread stopped by the hook has hooks off for good: its __close handlers must not run
  if killed_threads[co] then return false, "coroutine was stopped by a resource limit" end
  local status = co_status(co)
  if status == "running" or status == "normal" then
    error("cannot close a " .. status .. " coroutine", 2)
  end
  if in_slots[co] == nil then push(co) end
  return co_close(co)
end

-- What lcorolib's auxwrap does after a failed resume: close a coroutine that failed, and add the
-- caller's position to a string error.
local function wrap_failed(co, err)
  if co_status(co) == "dead" then
    local closed, close_err = co_close(co)
    if not closed then err = close_err end
  end
  if type(err) == "string" then error(err, 3) end
  error(err, 0)
end

local function wrap_finish(co, ok, ...)
  if ok then return ... end
  wrap_failed(co, (...))
end

-- While permanent slots are free, the coroutine is listed at creation until it is dead (or its
-- function is garbage, see `stays`), and the script gets the C function coroutine.wrap made:
-- switches cost nothing extra. If the hook stops the thread, that function closes it; the
-- watchdog re-enables hooks on listed threads that overrun (ALLOW_HOOKS_AFTER_POLLS), so its
-- __close handlers stay interruptible. Once all permanent slots are taken, calls go through a
-- Lua function (auxwrap's behaviour, in Lua) that lists the coroutine when first resumed in a call.
local function sb_wrap(...)
  local f = ...
  if type(f) ~= "function" then typeerror(1, 1, "function", f, select("#", ...) >= 1) end
  local wrapped = co_wrap(f)
  local _, co = d_getupvalue(wrapped, 1)
  hooktable[co] = hook
  if (permanent_count >= PERMANENT_CAPACITY or top >= SLOT_CAPACITY)
     and not compacted_for_wrap then
    compacted_for_wrap = true
    compact()   -- frees the places of dead and finished ones, and of collected generators
  end
  if permanent_count < PERMANENT_CAPACITY and top < SLOT_CAPACITY then
    permanent[co] = true
    permanent_count = permanent_count + 1
    wrapper_of[co] = wrapped
    push(co)
    return wrapped
  end
  return function(...)
    if co ~= listed then
      if in_slots[co] == nil then push(co) end
      listed = co
    end
    return wrap_finish(co, co_resume(co, ...))
  end
end

return {
  ["coroutine.create"] = sb_create, ["coroutine.resume"] = sb_resume,
  ["coroutine.wrap"] = sb_wrap, ["coroutine.close"] = sb_close,
  _begin = begin,
}
