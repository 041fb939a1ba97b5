-- sandbox.lua: builds the sandbox of one context. Runs once, trusted, in a fresh Lua 5.4 state.
-- Uses: the debug library (hooks, registry), captured here before scripts can reach anything.
-- Provides: a control table for the host (never reachable from scripts) holding the script
-- environment, built from the host's policy (engine/_policy.py), and the trampolines the host
-- calls.
--
-- Interrupting scripts: once a call is past its deadline, the host's watchdog thread arms a count
-- hook (lua_sethook) on the main thread and on every thread listed in `slots`. `hook` below then
-- arms every known thread and raises on every instruction, so pcall cannot swallow the stop. A
-- standing hook costs +130% on Lua 5.4, so none is set while a script is within budget.
--
-- `slots` lists every coroutine that may be running in this call; coroutines.lua keeps it (its
-- header says how), and wraps coroutine.create, resume, wrap and close to that end.
local print_sink, report_violation, max_depth, c_call_ns, print_limit, trusted, max_load_bytes,
  seed1, seed2, TIME_COUNT, SAMPLE_COUNT, policy, argcheck_chunk, export_chunk = ...
local module_chunks = {select(15, ...)}   -- engine.SANDBOX_MODULES, precompiled, in order

-- Lua seeds each state's generator from the time and an address, which math.randomseed()
-- returns: one script could predict another's rolls. Seeds come from the host's os.urandom.
local m_randomseed = math.randomseed
local REF_SLACK = 256
m_randomseed(seed1, seed2)

local d_sethook, d_gethook, d_getinfo, d_traceback, d_getregistry =
  debug.sethook, debug.gethook, debug.getinfo, debug.traceback, debug.getregistry
local type, error, pcall, xpcall, select, next, rawget, rawset, rawequal, rawlen =
  type, error, pcall, xpcall, select, next, rawget, rawset, rawequal, rawlen
local tostring, tonumber, setmetatable, getmetatable, load, ipairs, pairs, assert =
  tostring, tonumber, setmetatable, getmetatable, load, ipairs, pairs, assert
local d_getmetatable = debug.getmetatable
local co_running = coroutine.running
local d_getupvalue = debug.getupvalue
local s_byte, s_sub, s_find, s_match, s_rep, s_format, s_len =
  string.byte, string.sub, string.find, string.match, string.rep, string.format, string.len
local t_concat, t_move, t_unpack = table.concat, table.move, table.unpack
local m_type, m_huge, m_tointeger, utf8_len = math.type, math.huge, math.tointeger, utf8.len
local collectgarbage = collectgarbage
local main = co_running()

-- lauxlib's argument checks, so that wrappers fail exactly as the C functions they stand for
local argcheck = load(argcheck_chunk, "=argcheck", "b", {})({
  type = type, error = error, tostring = tostring, tonumber = tonumber, rawget = rawget,
  d_getmetatable = d_getmetatable, getinfo = d_getinfo, tointeger = m_tointeger,
  s_format = s_format, setmetatable = setmetatable,
})
local argerror, typeerror, optstring, optinteger =
  argcheck.argerror, argcheck.typeerror, argcheck.optstring, argcheck.optinteger

------------------------------------------------------------------------------------------------
-- Interruption
------------------------------------------------------------------------------------------------
-- TIME_COUNT, SAMPLE_COUNT: the hook counts the watchdog arms with, per reason (_watchdog.py)
local RECURSION_MESSAGE = "recursion limit exceeded"
local killed = false                    -- false | "time" | "recursion"
local killed_threads = setmetatable({}, {__mode = "k"})
local read_only = setmetatable({}, {__mode = "k"})   -- the views `freeze` made
-- 16 permanent slots for coroutine.wrap generators, 200 for nested coroutines (coroutines.lua)
local PERMANENT_CAPACITY = 16
local SLOT_CAPACITY = 200 + PERMANENT_CAPACITY   -- slots[1..217]: 3.4 KiB
-- slots[1]: how many threads follow; slots[2 .. n + 1]: the threads. The array is filled once
-- (with `main` as filler) and never resized, because the watchdog reads it from another thread.
local slots = {0}
for i = 2, SLOT_CAPACITY + 1 do slots[i] = main end
local threads_state = {dirty = false}   -- dirty: coroutines.lua has work at the next call's start
local threads_begin                      -- that work (untrusted contexts only)
-- the kit's coroutine functions (tasks): create/resume become coroutines.lua's when untrusted
local kit_co = {create = coroutine.create, resume = coroutine.resume, yield = coroutine.yield,
                running = co_running, status = coroutine.status,
                isyieldable = coroutine.isyieldable}
local last_deep = false      -- the last failed call ran deeper than the recursion limit
local last_handled = false   -- the message handler saw the last error (memory errors skip it)
local hook

d_sethook(function() end, "", 0)        -- creates the registry's hook table
local hooktable = d_getregistry()._HOOKKEY  -- weak keys: threads; also holds its __mode

local function arm_all()
  for thread in next, hooktable do
    if type(thread) == "thread" then d_sethook(thread, hook, "", TIME_COUNT) end
  end
  d_sethook(main, hook, "", TIME_COUNT)
end

hook = function()
  local _, _, count = d_gethook()
  local thread, is_main = co_running()
  if not killed then
    if count == SAMPLE_COUNT then
      -- level 2 is the interrupted function; the main thread has xpcall and run below it
      if d_getinfo(2 + (is_main and 2 or 0) + max_depth, "l") == nil then
        d_sethook(hook, "", 0)
        return
      end
      killed = "recursion"
    else
      killed = "time"
    end
    arm_all()
  end
  if not is_main then killed_threads[thread] = true end
  error(killed == "recursion" and RECURSION_MESSAGE or "time limit exceeded", 0)
end
d_sethook(hook, "", 0)

local env      -- the script environment, filled in below
local staged   -- the environment of the version `stage` runs (load's default meanwhile)

local violated = false   -- a violation in this call (even one a pcall caught)

local function begin_call()
  if threads_state.dirty then threads_begin() end
  last_deep, last_handled, staged, violated = false, false, nil, false
end

------------------------------------------------------------------------------------------------
-- Violations: recorded by the host out of band, so catching the error does not hide them.
------------------------------------------------------------------------------------------------
-- The message starts with the position of the innermost frame of script code from `level` up
-- (trusted chunks carry no line information); `callback`: the script callback that ran, if known.
local function violation(reason, message, level, entity, callback)
  for at = level + 1, level + 40 do
    local frame = d_getinfo(at, "Sl")
    if frame == nil then break end
    if frame.currentline > 0 then message = s_format("%s:%d: %s", frame.short_src,
      frame.currentline, message) break end
  end
  report_violation(reason, message, entity, callback)
  violated = true
  error(message, 0)
end

------------------------------------------------------------------------------------------------
-- Base functions
------------------------------------------------------------------------------------------------
-- An error caught by a script's pcall: a call deeper than the recursion limit is not the script's
-- to catch (raise it again). Everything else, Lua's own "stack overflow" errors included, is an
-- ordinary error, as in plain Lua. A stop by the hook needs nothing here: the hook raises again
-- on the next instruction.
local function caught(ok, ...)
  if not ok then
    local _, is_main = co_running()
    if d_getinfo(2 + (is_main and 2 or 0) + max_depth, "l") ~= nil then
      killed = "recursion"   -- as if the hook had stopped it: no pcall further up catches it
      arm_all()
      error(RECURSION_MESSAGE, 0)
    end
  end
  return ok, ...
end

local function sb_pcall(...)
  if select("#", ...) == 0 then argerror(1, 1, "value expected") end
  return caught(pcall(...))
end

local function sb_xpcall(...)
  local f, handler = ...
  if type(handler) ~= "function" then
    typeerror(1, 2, "function", handler, select("#", ...) >= 2)
  end
  -- a handler runs with hooks off when the error came from the hook: it must not run then
  return caught(xpcall(f, function(e)
    if killed then return e end
    return handler(e)
  end, select(3, ...)))
end

-- luaL_tolstring: a __tostring that returns no string fails at the caller of print
local function tolstring(value)
  local mt = d_getmetatable(value)
  local tm = type(mt) == "table" and rawget(mt, "__tostring") or nil
  if tm == nil then return tostring(value) end
  local text = tm(value)
  local kind = type(text)
  if kind == "number" then return tostring(text) end
  if kind ~= "string" then error("'__tostring' must return a string", 3) end
  return text
end

local function sb_print(...)
  local n = select("#", ...)
  local parts = {...}
  for i = 1, n do parts[i] = tolstring(parts[i]) end
  local line = t_concat(parts, "\t", 1, n)
  if #line > print_limit then line = s_sub(line, 1, print_limit) .. "..." end
  print_sink(line)
end

local ESC = 27
local function too_long()
  return s_format("chunk is larger than %d bytes (the sandbox's limit)", max_load_bytes)
end

-- load as lbaselib's, except: binary chunks are a violation, and chunks are at most
-- max_load_bytes (the compiler's work per byte is unbounded: docs/security.md).
local function sb_load(...)
  local nargs = select("#", ...)
  local chunk, chunkname, mode, env_arg = ...
  mode = optstring(1, 3, mode, "bt")
  if nargs < 4 then env_arg = staged or env end
  local kind = type(chunk)
  if kind == "string" or kind == "number" then
    chunk = tostring(chunk)
    chunkname = optstring(1, 2, chunkname, chunk)
    if s_byte(chunk, 1) == ESC then
      violation("binary_chunk", "binary chunks are not allowed in the sandbox", 2)
    end
    if #chunk > max_load_bytes then return nil, too_long() end
    return load(chunk, chunkname, mode, env_arg)
  end
  chunkname = optstring(1, 2, chunkname, "=(load)")
  if kind ~= "function" then typeerror(1, 1, "function", chunk, nargs >= 1) end
  local reader, first, size = chunk, true, 0
  return load(function()
    local piece = reader()
    if first and piece ~= nil and piece ~= "" then
      first = false
      if type(piece) == "string" and s_byte(piece, 1) == ESC then
        violation("binary_chunk", "binary chunks are not allowed in the sandbox", 2)
      end
    end
    if type(piece) == "string" then
      size = size + #piece
      if size > max_load_bytes then error(too_long(), 0) end
    end
    return piece
  end, chunkname, mode, env_arg)
end

-- rawset as Lua's, except on the read-only views `freeze` makes.
local function sb_rawset(...)
  local t = ...
  local n = select("#", ...)
  argcheck.checktable(1, 1, t, n >= 1)
  if n < 3 then argerror(1, n + 1, "value expected") end
  if read_only[t] then argerror(1, 1, "table is read-only") end
  rawset(...)
  return t
end

-- require: the modules the host registered (the manager's `register_module`). Each runs once
-- per environment, in that environment, and its value is cached there; a reload's fresh
-- environment runs them again, with the sources registered by then.
local module_source = nil   -- host function: name -> source text, or nil (set_modules)
local modules_of = setmetatable({}, {__mode = "k"})   -- environment -> {name -> value}
local LOADING = {}
local function sb_require(name)
  name = argcheck.checkstring(1, 1, name, true)
  local current = staged or env
  local cache = modules_of[current]
  if not cache then cache = {} modules_of[current] = cache end
  local value = cache[name]
  if value == LOADING then error("module '" .. name .. "' requires itself (a loop)", 2) end
  if value ~= nil then return value end
  local source = module_source and module_source(name)
  if type(source) ~= "string" then error("module '" .. name .. "' not found", 2) end
  local chunk, err = load(source, "=" .. name, "t", current)
  if not chunk then error(err, 0) end
  cache[name] = LOADING
  local ok, result = sb_pcall(chunk, name)
  if not ok then cache[name] = nil error(result, 0) end
  if result == nil then result = true end
  cache[name] = result
  return result
end

local function set_modules(source_of)
  module_source = source_of
  return 0   -- no values (see export.lua)
end

-- Options that change how the collector runs are the host's; the rest are plain Lua's.
local GC_OPTIONS = {count = true, collect = true, step = true, isrunning = true, restart = true}
local GC_HOST_OPTIONS = {stop = true, setpause = true, setstepmul = true, generational = true,
                         incremental = true}
local function sb_collectgarbage(...)
  local option = optstring(1, 1, (...), "collect")
  if not GC_OPTIONS[option] then
    if GC_HOST_OPTIONS[option] then
      argerror(1, 1, "option '" .. option .. "' is not available in the sandbox")
    end
    argerror(1, 1, "invalid option '" .. option .. "'")
  end
  if option == "step" then
    return collectgarbage(option, optinteger(1, 2, (select(2, ...)), 0))
  end
  return collectgarbage(option)
end

------------------------------------------------------------------------------------------------
-- The script environment
------------------------------------------------------------------------------------------------
local make_env
local extensions = {}   -- globals added by host extensions (the ECS `world` API), in every env

if trusted then
  -- engine-owned code and baselines: the whole standard library, print still goes to the host
  _G.print = sb_print
  make_env = function() return _G end
else
  -- The sandbox's own versions of Lua's functions, by qualified name ("pcall", "string.find"):
  -- the policy's guarded names. C functions that could run long inside one instruction get the
  -- modules' versions: the C function where its cost is provably small, an interruptible Lua
  -- port otherwise.
  local own = {pcall = sb_pcall, xpcall = sb_xpcall, print = sb_print, load = sb_load,
               collectgarbage = sb_collectgarbage, require = sb_require, rawset = sb_rawset}
  own["math.randomseed"] = function(...)
    if select("#", ...) > 0 then
      local n1 = argcheck.checkinteger(1, 1, (...), true)
      return m_randomseed(n1, argcheck.optinteger(1, 2, select(2, ...), 0))
    end
    seed1 = seed1 * 6364136223846793005 + 1442695040888963407
    seed2 = (seed2 ~ (seed1 >> 31)) * -7046029254386353131
    return m_randomseed(seed1, seed2)   -- fresh seeds, returned as Lua returns its own
  end
  -- The modules get the library tables themselves: no script ever reaches those (the globals
  -- are emptied below; the string metatable's __index becomes the environment's `string`).
  local module_kit = {
    base = {type = type, error = error, select = select, next = next, rawget = rawget,
            rawset = rawset, rawequal = rawequal, rawlen = rawlen, tostring = tostring,
            tonumber = tonumber, setmetatable = setmetatable, getmetatable = getmetatable,
            pcall = pcall, ipairs = ipairs, pairs = pairs, assert = assert},
    string = string, table = table, math = math, utf8 = utf8, coroutine = coroutine,
    debug = {getinfo = d_getinfo, getmetatable = d_getmetatable, getupvalue = d_getupvalue},
    c_call_ns = c_call_ns,
    threads = {slots = slots, main = main, hook = hook, hooktable = hooktable,
               killed_threads = killed_threads, state = threads_state,
               permanent_capacity = PERMANENT_CAPACITY, slot_capacity = SLOT_CAPACITY},
  }
  local shared = {}   -- every module's entries, for the modules after it
  for i = 1, #module_chunks do
    for name, value in next, load(module_chunks[i], "=module", "b", {})(module_kit, argcheck,
                                                                        shared) do
      shared[name] = value
      if s_find(name, ".", 1, true) then own[name] = value end
    end
  end
  threads_begin = shared._begin
  kit_co.create, kit_co.resume = shared["coroutine.create"], shared["coroutine.resume"]

  -- The environment holds the policy's names (_policy.py) and nothing else: plain names with
  -- Lua's own value, guarded names with the version in `own`. `policy` lists, for each table,
  -- "_G" or a library's name, its numbers of plain and of guarded names, then those names.
  -- Library tables are shared by the environments of one context (they belong to the same
  -- script).
  local globals = {}   -- what every fresh environment starts with
  local guarded = {}   -- qualified name -> true
  local function missing(name, why)
    error("sandbox policy: no value for '" .. name .. "' (" .. why .. ")", 0)
  end
  local i = 1
  while policy[i] ~= nil do
    local library, n_plain, n_guarded = policy[i], policy[i + 1], policy[i + 2]
    local fields, originals, prefix = globals, _G, ""
    if library ~= "_G" then
      fields, originals, prefix = {}, _G[library] or {}, library .. "."
      globals[library] = fields
    end
    local last_plain = i + 2 + n_plain
    for j = i + 3, last_plain do
      local field = policy[j]
      fields[field] = originals[field] or missing(prefix .. field, "this Lua has none")
    end
    for j = last_plain + 1, last_plain + n_guarded do
      local field = policy[j]
      local name = prefix .. field
      fields[field] = own[name] or missing(name, "the sandbox has no version of it")
      guarded[name] = true
    end
    i = last_plain + n_guarded + 1
  end
  for name, fn in next, own do
    if not guarded[name] then
      error("sandbox policy: the sandbox's own '" .. name .. "' is not listed as guarded", 0)
    end
    argcheck.name(fn, name)
  end

  -- A fresh global table for script code
  make_env = function()
    local fresh = {}
    for name, value in next, globals do fresh[name] = value end
    fresh._G = fresh
    for name, value in next, extensions do fresh[name] = value end
    return fresh
  end

  -- string methods ("x"):find(...) resolve through the sandboxed string table
  d_getmetatable("").__index = globals.string
end
env = make_env()

local results = load(export_chunk, "=export", "b", {})({type = type, error = error,
  select = select, next = next, rawset = rawset})

local function run(fn, ...)
  return results(fn(...))
end

------------------------------------------------------------------------------------------------
-- Host trampolines. Each ends in a tail call to xpcall, so that no trusted Lua instruction runs
-- after a stopped script unwinds.
------------------------------------------------------------------------------------------------
local function handler(e)
  if killed then return e end
  last_handled = true
  if d_getinfo(4 + max_depth, "l") ~= nil then last_deep = true end
  if type(e) ~= "string" then
    local ok, text = pcall(tostring, e)
    e = (ok and type(text) == "string") and text or ("(error object is a " .. type(e) .. " value)")
  end
  return d_traceback(e, 2)
end

local function execute(source, chunkname)
  begin_call()
  local fn, err = load(source, chunkname, "t", env)
  if not fn then return nil, err end
  return xpcall(run, handler, fn)
end

local function call(name, ...)
  begin_call()
  local fn = rawget(env, name)
  if type(fn) ~= "function" then return nil, "no global function '" .. tostring(name) .. "'" end
  return xpcall(run, handler, fn, ...)
end

-- Run a new version of the script's code in a fresh environment; only when its top-level code
-- succeeds does it replace the current one (a failed reload keeps the old version running).
local function adopt(fn, fresh)
  staged = fresh
  fn()
  if not violated then env = fresh end   -- a caught violation fails the stage too (the host)
  staged = nil
  return 0   -- no values (see export.lua)
end

local function stage(source, chunkname)
  begin_call()
  local fresh = make_env()
  local fn, err = load(source, chunkname, "t", fresh)
  if not fn then return nil, err end
  return xpcall(adopt, handler, fn, fresh)
end

-- Call a trusted function made by an extension, under the same protection as script calls.
local function invoke(fn, ...)
  begin_call()
  return xpcall(fn, handler, ...)
end

-- Call a trampoline above with arguments the host packed into one table: pushing a table
-- reference allocates nothing, so no allocation happens outside Lua's protection while the
-- memory limit is in force (see ScriptContext._run).
local function apply(fn, packed, n)
  return fn(t_unpack(packed, 1, n))
end

-- After a stop: disarm every thread and report why the call was stopped.
local function after_stop()
  for thread in next, hooktable do
    if type(thread) == "thread" then d_sethook(thread, hook, "", 0) end
  end
  d_sethook(main, hook, "", 0)
  local reason = killed
  killed, last_deep = false, false
  return reason
end

-- Read-only views of host data (a script's config, an instance's params): indexing, pairs,
-- ipairs and # see the data; writes raise (`rawset` too: see sb_rawset); the metatable is
-- locked; the data table itself is never handed out.
local function freeze(value, what)
  if type(value) ~= "table" then return value end
  local data = {}
  for k, v in next, value do data[k] = freeze(v, what) end
  local function refuse() error(what .. " is read-only", 2) end
  local function step(_, key) return next(data, key) end
  local view = setmetatable({}, {__index = data, __newindex = refuse, __metatable = what,
                                 __len = function() return rawlen(data) end,
                                 __pairs = function(t) return step, t, nil end})
  read_only[view] = true
  return view
end

-- A global the host sets, read-only, in this environment and every later one (`stage`).
local function set_constant(name, value)
  local frozen = freeze(value, name)
  extensions[name] = frozen
  env[name] = frozen
  if staged then staged[name] = frozen end
  return 0   -- no values (see export.lua)
end

-- After a failed call: whether it ran deeper than the limit, whether the message handler saw its
-- error, and the limit that stopped it when no watchdog did (see `caught`).
local function outcome()
  local deep, handled = last_deep, last_handled
  last_deep, last_handled = false, false
  if killed then return deep, handled, after_stop() end
  return deep, handled, nil
end

if not trusted then
  local globals = _G
  for name in next, globals do globals[name] = nil end
end

-- The host points Lua's "__gc" event name at this long string (see native.FinalizerSwitch): no
-- key ever equals it, so no script object is ever marked for finalization.
local GC_DISABLED = s_rep("\0", 48) .. "finalizers are disabled in the sandbox"
d_getregistry()[GC_DISABLED] = true

-- What extensions (trusted Lua chunks run at set-up, see `install`) may use: the original
-- library functions, captured before any script could replace a field of its copies.
local function make_kit()
  return {
    violation = violation,
    current_env = function() return env end,
    add_global = function(name, value)
      extensions[name] = value
      env[name] = value
    end,
    running_deep = function(level) return d_getinfo(level + max_depth, "l") ~= nil end,
    traceback = d_traceback,
    killed = function() return killed end,
    export = results,   -- values as `call` returns them (ScriptContext.entry(exported=True))
    freeze = freeze,
    coroutine = kit_co,   -- threads the watchdog can stop (coroutines.lua's when untrusted)
    type = type, error = error, pcall = pcall, xpcall = xpcall, select = select, next = next,
    rawget = rawget, rawset = rawset, rawequal = rawequal, rawlen = rawlen, tostring = tostring,
    setmetatable = setmetatable, getmetatable = getmetatable,
    s_sub = s_sub, s_find = s_find, s_format = s_format, s_len = s_len,
    t_concat = t_concat, t_unpack = t_unpack, t_move = t_move, m_type = m_type,
    huge = m_huge, utf8_len = utf8_len, tointeger = m_tointeger,
    load = function(source, chunkname, mode, environment)   -- text only, for generated code
      return assert(load(source, chunkname, "t", environment))
    end,
  }
end

-- `chunk`: bytecode the host precompiled from one of its own files (engine.compile_chunk); never
-- anything a script supplied.
local kit = nil   -- built on the first install: contexts without extensions do not pay for it
local function install(chunk, chunkname, ...)
  local fn = assert(load(chunk, chunkname, "b", {}))
  kit = kit or make_kit()
  return fn(kit, ...)
end

-- lupa takes a registry reference (luaL_ref) for each Lua table a host function receives, while
-- the memory limit is in force: growing the registry there could fail, and Lua would run an
-- emergency collection holding the GIL, or raise through lupa's frames. luaL_ref reuses free
-- places first (lauxlib's list at index LUA_RIDX_LAST + 1): 256 of them, made now.
do
  local registry, freelist = d_getregistry(), 3
  local free, last = rawget(registry, freelist) or 0, rawlen(registry)
  for i = last + 1, last + REF_SLACK - 1 do rawset(registry, i, i + 1) end
  rawset(registry, last + REF_SLACK, free)
  rawset(registry, freelist, last + 1)
end

return {
  env = env,
  install = install,
  invoke = invoke,
  set_constant = set_constant,
  set_modules = set_modules,
  apply = apply,
  stage = stage,
  event_names = s_format("%p %p %p %p", "__index", "__newindex", "__gc", "__mode"),
  gc_disabled = s_format("%p", GC_DISABLED),
  execute = execute,
  call = call,
  after_stop = after_stop,
  outcome = outcome,
  collect = function(full) if full then collectgarbage("collect") else local due = {} end end,
  identity = function(...) return ... end,
  slots = s_format("%p", slots),
  slot_capacity = SLOT_CAPACITY,
  main = s_format("%p", main),
}
