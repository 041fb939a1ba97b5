-- tasks.lua: the `task` global (task.spawn, task.wait, task.delay, task.cancel), the tasks and
-- timers of one script's instances. Installed once, trusted, before world.lua (see
-- _world_api.py), which hands it a way to run code as an entity and to record errors (`bind`),
-- runs `run` once a tick (after events and the owed on_start/on_destroy calls, before
-- on_update) while any task lives, ends an instance's tasks before its on_destroy
-- (`end_entity`) and cancels the old version's tasks after a reload (`reloaded`).
-- Uses: the sandbox kit, whose coroutine.create/resume are the sandbox's own (coroutines.lua):
-- every task thread gets the hook and a place in `slots`, so the watchdog's time and recursion
-- limits reach task code as they reach callbacks; instances.lua's state (an ended instance
-- starts no task). Everything lives in the script's own state, under its memory limit.
--
-- Time: `now` is the sum of the dt of the ticks whose task phase ran. While no task lives the
-- phase does not run and `now` stands still, which changes nothing: only differences are read.
-- A wait (or delay) asked during a tick counts from that tick's time; asked before the tick's
-- task phase (on_event, on_start, on_reload), it is counted from the phase, which adds the tick's
-- dt first (`pending` keeps it until then). It ends in the first later phase where the time
-- since reaches it, so task.wait(0) resumes in the next tick, and a task runs at most once a
-- phase (a task that waits again goes to `pending`). A phase runs the tasks due in order of
-- (due time, order of asking): those asked since the last phase and due already go to `ready`
-- (in that order, as pending keeps it: the common case of short waits never touches the heap),
-- the rest to a binary heap; the phase merges the two. It visits the tasks asked since the last
-- phase and those due, nothing else.
--
-- Bookkeeping stopped half-way by a limit (the hook raises on any instruction) leaves `dirty`,
-- `in_phase` or `stepping` set: the next phase (or the next spawn, cancel, end or reload)
-- rebuilds the queues from `owned`, and a task that was running when the call stopped ends.
local kit, caps, roster, checks = ...

local type, error, next, select, setmetatable, xpcall, tostring =
  kit.type, kit.error, kit.next, kit.select, kit.setmetatable, kit.xpcall, kit.tostring
local s_format, s_find, t_unpack, huge = kit.s_format, kit.s_find, kit.t_unpack, kit.huge
local traceback, current_env = kit.traceback, kit.current_env
local co_create, co_resume, co_yield, co_running, co_status, co_isyieldable =
  kit.coroutine.create, kit.coroutine.resume, kit.coroutine.yield, kit.coroutine.running,
  kit.coroutine.status, kit.coroutine.isyieldable
local roster_state = roster.current
local function instances_now() return roster_state().instances end

local MAX_TASKS = caps.max_tasks   -- live tasks per script
-- A wait ends when the time since reaches it within this (seconds), so that waits in steps of
-- 1/60 end on the tick one expects despite rounding.
local TOLERANCE = 1e-9
local PENDING, HEAP, READY, RUNNING = 1, 2, 3, 4   -- where a live task is (rec.where; nil: ended)
local WAIT, WAKE = {}, {}               -- what task.wait yields, what the phase resumes it with

-- A task record: entity (its owner), env (the code version that started it), thread (nil for a
-- delayed task not started yet: fn and args then), where and slot (its place in `pending`,
-- `heap` or `ready`), seconds, start and stamp (the tick it was asked in; false once counted
-- from a phase) of its wait, due and seq (its order), request (what task.wait asked, until the
-- yield is seen).
local live = {0}            -- live[1]: how many tasks live (world.lua's check; the host reads it)
local owned = {}            -- entity -> {rec = true}: every live task
local pending, n_pending = {}, 0
local heap, n_heap = {}, 0
local ready = {}            -- the phase's tasks due that waited since the last one, in order
local stepping = {}         -- rec -> true: being resumed now
local dirty, in_phase = false, false
local now, seq = 0, 0
local record_of = setmetatable({}, {__mode = "k"})   -- handle -> rec: handles are unforgeable
local task_of = setmetatable({}, {__mode = "k"})     -- thread -> rec
local HANDLE = {__metatable = "task",
                __newindex = function() error("a task handle is read-only", 2) end}

local record, enter, owner   -- world.lua's (see `bind`)

------------------------------------------------------------------------------------------------
-- The queues
------------------------------------------------------------------------------------------------
local function earlier(a, b)
  return a.due < b.due or (a.due == b.due and a.seq < b.seq)
end

-- The heap's sifts compare inline: they are the phase's hot loop.
local function sift_up(i)
  local rec = heap[i]
  local due, seq_no = rec.due, rec.seq
  while i > 1 do
    local up = i // 2
    local parent = heap[up]
    local parent_due = parent.due
    if parent_due < due or (parent_due == due and parent.seq < seq_no) then break end
    heap[i], parent.slot = parent, i
    i = up
  end
  heap[i], rec.slot = rec, i
end

local function sift_down(i)
  local rec = heap[i]
  local due, seq_no = rec.due, rec.seq
  while true do
    local child = 2 * i
    if child > n_heap then break end
    local below = heap[child]
    if child < n_heap then
      local right = heap[child + 1]
      local right_due, below_due = right.due, below.due
      if right_due < below_due or (right_due == below_due and right.seq < below.seq) then
        child, below = child + 1, right
      end
    end
    local below_due = below.due
    if below_due > due or (below_due == due and below.seq > seq_no) then break end
    heap[i], below.slot = below, i
    i = child
  end
  heap[i], rec.slot = rec, i
end

local function heap_push(rec)
  n_heap = n_heap + 1
  heap[n_heap], rec.where = rec, HEAP
  sift_up(n_heap)
end

local function heap_remove(i)
  local last = heap[n_heap]
  heap[n_heap] = nil
  n_heap = n_heap - 1
  if i > n_heap then return end
  heap[i] = last
  if i > 1 and earlier(last, heap[i // 2]) then sift_up(i) else sift_down(i) end
end

local function pend(rec, seconds, stamp)
  seq = seq + 1
  rec.seconds, rec.start, rec.stamp, rec.seq = seconds, now, stamp, seq
  n_pending = n_pending + 1
  pending[n_pending], rec.slot, rec.where = rec, n_pending, PENDING
end

local function unpend(i)
  local last = pending[n_pending]
  pending[n_pending] = nil
  n_pending = n_pending - 1
  if i <= n_pending then pending[i], last.slot = last, i end
end

local function register(rec)
  dirty = true
  live[1] = live[1] + 1
  local mine = owned[rec.entity]
  if mine == nil then
    mine = {}
    owned[rec.entity] = mine
  end
  mine[rec] = true
  dirty = false
end

-- The task ends (done, failed or cancelled); its thread, if suspended, is never resumed again
-- (its pending `<close>` variables are not closed: no script code runs at a cancel).
local function finish(rec)
  dirty = true
  local where = rec.where
  rec.where = nil
  -- a READY task stays in `ready`, which the phase reads past
  if where == PENDING then unpend(rec.slot) elseif where == HEAP then heap_remove(rec.slot) end
  rec.thread, rec.fn, rec.args = nil, nil, nil
  local mine = owned[rec.entity]
  if mine and mine[rec] then
    mine[rec] = nil
    live[1] = live[1] - 1
    if next(mine) == nil then owned[rec.entity] = nil end
  end
  dirty = false
end

local function runs(rec)
  local status = rec.thread and co_status(rec.thread)
  return status == "running" or status == "normal"
end

-- Rebuild the queues and the count from `owned` after a stop; a task that was being resumed
-- when the call stopped (not running now) ends.
local function repair()
  local fresh_pending, fresh_heap, stale = {}, {}, {}
  local np, nh, count = 0, 0, 0
  for _, mine in next, owned do
    for rec in next, mine do
      count = count + 1
      local where = rec.where
      if where == PENDING then
        np = np + 1
        fresh_pending[np], rec.slot = rec, np
      elseif where == HEAP or where == READY then
        nh = nh + 1
        fresh_heap[nh], rec.slot, rec.where = rec, nh, HEAP
      elseif not (where == RUNNING and runs(rec)) then
        stale[#stale + 1] = rec
      end
    end
  end
  pending, n_pending, heap, n_heap, live[1] = fresh_pending, np, fresh_heap, nh, count
  ready, in_phase = {}, false
  for i = nh // 2, 1, -1 do sift_down(i) end
  for rec in next, stepping do
    if not runs(rec) then stepping[rec] = nil end
  end
  dirty = false
  for i = 1, #stale do finish(stale[i]) end
end

------------------------------------------------------------------------------------------------
-- Running a task: a thread made by the sandbox's coroutine.create, resumed as its entity
------------------------------------------------------------------------------------------------
-- Inside the task's thread: the error record world.lua's `record` takes ({kind, message}), with
-- the traceback at the error. Levels above the script: running_deep, handler; below it: xpcall.
local handler = checks.error_handler(4)

local function body(fn, ...)
  return xpcall(fn, handler, ...)
end

-- An error record for a traceback whose message names no line: at the first script line in it.
local function at_line(trace)
  local _, _, at = s_find(trace, "\n\t([^\n]-:%d+): ")
  return {kind = "runtime", message = at and at .. ": " .. trace or trace}
end

local YIELDED = "coroutine.yield inside a task (a task waits with task.wait)"

-- After a resume: the task waits (task.wait), ended (returned or failed), or yielded without
-- task.wait.
local function settle(rec, thread, outer, outer_callback, ok, first, err)
  enter(outer, outer_callback)
  local seconds = rec.request
  rec.request = nil
  if ok and first == WAIT and seconds ~= nil then
    if rec.where == RUNNING then   -- else it was cancelled while it ran: suspended for good
      local _, tick = owner()
      dirty = true
      pend(rec, seconds, tick)
      dirty = false
    end
  elseif not ok or co_status(thread) == "dead" then
    if rec.where ~= nil then finish(rec) end
    if not ok then   -- the resume failed ("C stack overflow": tasks nested too deep; memory)
      record(first == "not enough memory" and first or at_line(traceback(tostring(first), 2)),
        rec.entity, "task")
    elseif not first then
      record(err, rec.entity, "task")
    end
  elseif rec.where == RUNNING then
    finish(rec)
    record(at_line(traceback(thread, YIELDED, 0)), rec.entity, "task")
  end
  stepping[rec] = nil
end

local function step(rec, ...)
  local thread = rec.thread
  stepping[rec], rec.where = true, RUNNING
  local outer, outer_callback = enter(rec.entity, "task")
  return settle(rec, thread, outer, outer_callback, co_resume(thread, ...))
end

local function start(rec, ...)
  local thread = co_create(body)
  rec.thread, task_of[thread] = thread, rec
  return step(rec, ...)
end

------------------------------------------------------------------------------------------------
-- The `task` global
------------------------------------------------------------------------------------------------
local task = {}

local function check_seconds(fname, seconds, arg, optional)
  if type(seconds) ~= "number" then
    if seconds == nil and optional then return 0 end
    error(s_format("bad argument #%d to 'task.%s' (number expected, got %s)", arg, fname,
      type(seconds)), 3)
  end
  if not (seconds >= 0 and seconds < huge) then   -- NaN fails both
    error(s_format("bad argument #%d to 'task.%s' (seconds must be finite and >= 0, got %s)",
      arg, fname, tostring(seconds)), 3)
  end
  return seconds
end

-- A record for a new task of the running instance; raises (at the script's call) when there is
-- none, `fn` is no function or the script has MAX_TASKS live tasks.
local function new_task(fname, fn, arg)
  local entity, tick = owner()
  if entity == nil then
    error(s_format("task.%s is only available inside callbacks of an attached script", fname), 3)
  end
  if type(fn) ~= "function" then
    error(s_format("bad argument #%d to 'task.%s' (function expected, got %s)", arg, fname,
      type(fn)), 3)
  end
  local owner_self = roster_state().instances[entity]
  if owner_self == nil then
    error(s_format("task.%s: the instance on entity %d has ended (its tasks end before "
      .. "on_destroy)", fname, entity), 3)
  end
  if dirty then repair() end
  if live[1] >= MAX_TASKS then
    error(s_format("task.%s: this script has %d live tasks, the limit", fname, MAX_TASKS), 3)
  end
  local handle = setmetatable({}, HANDLE)
  local rec = {entity = entity, env = current_env(), self = owner_self}
  record_of[handle] = rec
  return rec, handle, tick
end

--- task.spawn(fn, ...): run fn(...) as a task of this instance now, until it waits or ends.
function task.spawn(fn, ...)
  local rec, handle = new_task("spawn", fn, 1)
  register(rec)
  start(rec, fn, ...)
  return handle
end

--- task.delay(seconds, fn, ...): start fn(...) as a task once `seconds` of game time passed.
function task.delay(seconds, fn, ...)
  local rec, handle, tick = new_task("delay", fn, 2)
  seconds = check_seconds("delay", seconds, 1)
  rec.fn, rec.args = fn, {n = select("#", ...), ...}
  register(rec)
  dirty = true
  pend(rec, seconds, tick)
  dirty = false
  return handle
end

--- task.wait(seconds): suspend this task for `seconds` of game time (none or 0: until the next
--- tick); returns the time it waited.
function task.wait(seconds)
  seconds = check_seconds("wait", seconds, 1, true)
  local rec = task_of[co_running()]
  if rec == nil then
    if next(stepping) ~= nil then
      error("task.wait: called from a coroutine inside a task; only the task's own code may "
        .. "wait, not coroutines it resumes", 2)
    end
    error("task.wait: not inside a task (use task.spawn)", 2)
  end
  if not stepping[rec] then   -- its thread resumed by script code, not by the task phase
    error("task.wait: this task is not running (script code resumed its coroutine)", 2)
  end
  if not co_isyieldable() then   -- inside a C function (a sort comparator, a metamethod...)
    error("task.wait: cannot wait here (inside a function called from C)", 2)
  end
  rec.request = seconds
  local token, waited = co_yield(WAIT)
  while token ~= WAKE do token, waited = co_yield() end   -- resumed by script code: not yet
  return waited
end

--- task.cancel(handle): end a task that waits, is delayed or runs; true if it was live, false
--- if it had ended already (done, failed or cancelled). A task that cancels itself runs on until
--- it waits or returns.
function task.cancel(handle)
  local rec = record_of[handle]
  if rec == nil then
    error("bad argument #1 to 'task.cancel' (task handle expected, got " .. type(handle) .. ")",
      2)
  end
  if rec.where ~= nil and dirty then repair() end
  if rec.where == nil then return false end
  finish(rec)
  return true
end

kit.add_global("task", task)

------------------------------------------------------------------------------------------------
-- For world.lua
------------------------------------------------------------------------------------------------
-- The task phase of tick `tick_no` (world.lua runs it while live[1] ~= 0).
local function run(dt, tick_no)
  if dirty or in_phase or next(stepping) ~= nil then repair() end
  in_phase = true
  now = now + dt
  -- pending, in order: asked earlier in this tick (counted from now: they stay), due now (to
  -- `ready` while that keeps it in order), or later (the heap)
  local kept, n_ready = 0, 0
  for i = 1, n_pending do
    local rec = pending[i]
    pending[i] = nil
    if rec.stamp == tick_no then
      rec.start, rec.stamp = now, false
      kept = kept + 1
      pending[kept], rec.slot = rec, kept
    else
      rec.due = rec.start + rec.seconds
      if rec.due - TOLERANCE <= now and (n_ready == 0 or not earlier(rec, ready[n_ready])) then
        n_ready = n_ready + 1
        ready[n_ready], rec.slot, rec.where = rec, n_ready, READY
      else
        heap_push(rec)
      end
    end
  end
  n_pending = kept
  -- the tasks due, merged from `ready` and the heap; a task that waits again goes to `pending`
  local at = 1
  while true do
    local rec = ready[at]
    while rec ~= nil and rec.where ~= READY do   -- ended or moved since
      ready[at] = nil
      at = at + 1
      rec = ready[at]
    end
    local top = heap[1]
    if top ~= nil and top.due - TOLERANCE <= now and (rec == nil or earlier(top, rec)) then
      dirty = true
      heap_remove(1)
      rec = top
    elseif rec ~= nil then
      dirty = true
      ready[at] = nil
      at = at + 1
    else
      break
    end
    rec.where, stepping[rec] = RUNNING, true
    dirty = false
    local thread = rec.thread
    if instances_now()[rec.entity] ~= rec.self then
      -- its instance ended (a stop between its on_destroy and the end of its tasks left it
      -- live): it ends now and never runs as an entity that is not its instance's
      stepping[rec] = nil
      finish(rec)
    elseif thread == nil then   -- a delayed task starts
      local fn, args = rec.fn, rec.args
      rec.fn, rec.args = nil, nil
      start(rec, fn, t_unpack(args, 1, args.n))
    elseif co_status(thread) == "suspended" then
      step(rec, WAKE, now - rec.start)
    else   -- the script closed its thread (coroutine.close): it ends quietly
      stepping[rec] = nil
      finish(rec)
    end
  end
  in_phase = false
end

-- The instance `self` on `entity` ends: so do its tasks (world.lua: before any owed on_destroy
-- runs; a tick stopped half-way ends the rest next tick, and the task phase ends any it meets).
local function end_entity(entity, self)
  if dirty then repair() end
  local mine = owned[entity]
  if mine == nil then return end
  for rec in next, mine do
    if rec.self == self then finish(rec) end
  end
end

-- A new version of the code was adopted: the tasks the old one started end.
local function reloaded()
  if dirty or next(stepping) ~= nil then repair() end
  local env = current_env()
  for _, mine in next, owned do
    for rec in next, mine do
      if rec.env ~= env then finish(rec) end
    end
  end
end

-- record(err, entity, callback): world.lua's error record; enter(entity, callback): run as
-- `entity` in `callback` from now on, returning the pair before; owner(): the running entity
-- and the tick number.
local function bind(record_error, as_entity, running_entity)
  record, enter, owner = record_error, as_entity, running_entity
end

return {live = live, run = run, end_entity = end_entity, reloaded = reloaded, bind = bind}
