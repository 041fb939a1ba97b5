-- sandbox.lua: builds the sandbox of one context. Runs once, trusted, in a fresh Lua 5.4 state.
-- Uses: the debug library (hooks, registry), captured here before scripts can reach anything.
-- Provides: a control table for the host (never reachable from scripts) holding the script
-- environment and the trampolines the host calls.
--
-- Interrupting scripts: once a call is past its deadline, the host's watchdog thread arms a count
-- hook (lua_sethook) on the main thread and on every thread listed in `slots`. `hook` below then
-- arms every known thread and raises on every instruction, so pcall cannot swallow the stop. A
-- standing hook costs +130% on Lua 5.4, so none is set while a script is within budget.
--
-- `slots` lists every coroutine resumed in this call that may still be running: a coroutine is
-- added when it is first resumed and leaves only when it is neither running nor resuming another
-- (see `compact`); up to 16 made by coroutine.wrap are listed from creation until they are dead
-- (see `sb_wrap`). So the running thread is always listed, and a switch to a listed coroutine
-- costs one table read, or nothing for those 16.
local print_sink, report_violation, max_depth, pattern_step_limit, print_limit, trusted = ...

local d_sethook, d_gethook, d_getinfo, d_traceback, d_getregistry =
  debug.sethook, debug.gethook, debug.getinfo, debug.traceback, debug.getregistry
local type, error, pcall, xpcall, select, next, rawget, rawset, rawequal, rawlen =
  type, error, pcall, xpcall, select, next, rawget, rawset, rawequal, rawlen
local tostring, tonumber, setmetatable, getmetatable, load, ipairs, pairs, assert =
  tostring, tonumber, setmetatable, getmetatable, load, ipairs, pairs, assert
local d_getmetatable = debug.getmetatable
local co_create, co_resume, co_running, co_status, co_close, co_wrap =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.status, coroutine.close,
  coroutine.wrap
local d_getupvalue = debug.getupvalue
local s_byte, s_sub, s_find, s_match, s_gmatch, s_gsub, s_rep, s_format, s_len =
  string.byte, string.sub, string.find, string.match, string.gmatch, string.gsub, string.rep,
  string.format, string.len
local t_concat, t_insert, t_remove, t_move, t_sort, t_unpack, t_pack =
  table.concat, table.insert, table.remove, table.move, table.sort, table.unpack, table.pack
local m_type, m_min, m_huge, m_floor, m_tointeger, utf8_len = math.type, math.min, math.huge,
  math.floor, math.tointeger, utf8.len
local collectgarbage = collectgarbage
local main = co_running()

------------------------------------------------------------------------------------------------
-- Interruption
------------------------------------------------------------------------------------------------
local TIME_COUNT, SAMPLE_COUNT = 1, 2   -- hook counts the watchdog arms with, per reason
local RECURSION_MESSAGE = "recursion limit exceeded"
local killed = false                    -- false | "time" | "recursion"
local killed_threads = setmetatable({}, {__mode = "k"})
-- Up to PERMANENT_CAPACITY coroutines made by coroutine.wrap keep their slot from creation until
-- they are dead (see sb_wrap), so that their calls need no wrapper; the rest of the capacity is
-- for coroutines nested inside one another.
local PERMANENT_CAPACITY = 16
local SLOT_CAPACITY = 63 + PERMANENT_CAPACITY   -- slots[1..80]: 1.3 KiB
-- slots[1]: how many threads follow; slots[2 .. n + 1]: the threads. The array is filled once
-- (with `main` as filler) and never resized, because the watchdog reads it from another thread.
local slots = {0}
for i = 2, SLOT_CAPACITY + 1 do slots[i] = main end
local in_slots, top = {}, 0
local permanent, permanent_count = {}, 0   -- thread -> true: listed until it is dead
-- Threads that left `slots` stay referenced for this call and the next one: the watchdog may
-- still hold their address.
local pins, old_pins, pins_dirty, old_dirty = {}, {}, false, false
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

-- Whether a listed thread must stay listed: it runs or resumes another, or it holds a permanent
-- slot and is not dead. A permanent thread that died gives its slot up.
local function stays(thread, status)
  if permanent[thread] then
    if status ~= "dead" then return true end
    permanent[thread] = nil
    permanent_count = permanent_count - 1
    return false
  end
  return status == "running" or status == "normal"
end

-- Keep in `slots` only the threads that must stay (above); the rest move to pins. Entries only
-- move down, and every entry is a live thread at all times: the watchdog may read the array
-- while this runs. No thread is listed twice (`in_slots` guards every push). Between calls no
-- thread runs, so only permanent ones need their status read.
local function compact(between_calls)
  local n = 0
  for i = 2, top + 1 do
    local thread = slots[i]
    local status = (between_calls and not permanent[thread]) and "suspended"
      or co_status(thread)
    if stays(thread, status) then
      n = n + 1
      slots[n + 1] = thread
    else
      in_slots[thread] = nil
      pins[thread] = true
    end
  end
  for i = n + 2, top + 1 do slots[i] = main end
  pins_dirty = true
  top = n
  slots[1] = n
  return n
end

local function push(co)
  local n = top
  if n >= SLOT_CAPACITY then
    n = compact()
    if n >= SLOT_CAPACITY then error("too many nested coroutines", 3) end
  end
  n = n + 1
  slots[n + 1] = co
  in_slots[co] = true
  top = n
  slots[1] = n
end

local function begin_call()
  if top > 0 then compact(true) end
  if pins_dirty or old_dirty then
    old_pins, pins = pins, {}
    old_dirty, pins_dirty = pins_dirty, false
  end
  last_deep, last_handled = false, false
end

------------------------------------------------------------------------------------------------
-- Violations: recorded by the host out of band, so catching the error does not hide them.
------------------------------------------------------------------------------------------------
local function violation(reason, message, level, entity)
  report_violation(reason, message, entity)
  error(message, level + 1)
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

local function sb_pcall(f, ...)
  return caught(pcall(f, ...))
end

local function sb_xpcall(f, handler, ...)
  if type(handler) ~= "function" then return xpcall(f, handler, ...) end
  -- a handler runs with hooks off when the error came from the hook: it must not run then
  return caught(xpcall(f, function(e)
    if killed then return e end
    return handler(e)
  end, ...))
end

local function sb_print(...)
  local n = select("#", ...)
  local args, parts = {...}, {}
  for i = 1, n do parts[i] = tostring(args[i]) end
  local line = t_concat(parts, "\t")
  if #line > print_limit then line = s_sub(line, 1, print_limit) .. "..." end
  print_sink(line)
end

local ESC = 27
local env  -- the script environment, filled in below
local function sb_load(chunk, chunkname, mode, env_arg)
  if env_arg == nil then env_arg = env end
  if chunkname ~= nil and type(chunkname) ~= "string" then
    error("bad argument #2 to 'load' (string expected)", 2)
  end
  if type(chunk) == "string" then
    if s_byte(chunk, 1) == ESC then
      violation("binary_chunk", "binary chunks are not allowed in the sandbox", 2)
    end
  elseif type(chunk) == "function" then
    local reader, first = chunk, true
    chunk = function()
      local piece = reader()
      if first and piece ~= nil and piece ~= "" then
        first = false
        if type(piece) == "string" and s_byte(piece, 1) == ESC then
          violation("binary_chunk", "binary chunks are not allowed in the sandbox", 2)
        end
      end
      return piece
    end
  else
    error("bad argument #1 to 'load' (string or function expected)", 2)
  end
  return load(chunk, chunkname or "=(load)", "t", env_arg)
end

local GC_OPTIONS = {count = true, collect = true, step = true, isrunning = true}
local function sb_collectgarbage(option, ...)
  option = option or "collect"
  if not GC_OPTIONS[option] then
    error("collectgarbage option '" .. tostring(option) .. "' is not available in the sandbox", 2)
  end
  return collectgarbage(option, ...)
end

------------------------------------------------------------------------------------------------
-- coroutine: threads get the hook function when created and a slot when first resumed
------------------------------------------------------------------------------------------------
local function sb_create(f)
  local co = co_create(f)
  hooktable[co] = hook
  return co
end

local function sb_resume(co, ...)
  if in_slots[co] == nil then
    if type(co) ~= "thread" then
      error("bad argument #1 to 'resume' (coroutine expected, got " .. type(co) .. ")", 2)
    end
    push(co)
  end
  return co_resume(co, ...)
end

local function sb_close(co)
  if type(co) ~= "thread" then
    error("bad argument #1 to 'close' (coroutine expected, got " .. type(co) .. ")", 2)
  end
  -- a thread stopped by the hook has hooks off for good: its __close handlers must not run
  if killed_threads[co] then return false, "coroutine was stopped by a resource limit" end
  if in_slots[co] == nil then push(co) end
  return co_close(co)
end

-- Calls go straight to the C function that coroutine.wrap made. If the hook stops the thread,
-- that function closes it, and the watchdog re-enables hooks on listed threads that overrun
-- (see Watchdog.allow_hooks_after_polls), so its __close handlers stay interruptible.
--
-- While permanent slots are free, the coroutine is listed at creation until it is dead, and the
-- script gets the C function itself: switches cost nothing extra. A generator abandoned while
-- suspended keeps its slot for the life of the context; once all permanent slots are taken,
-- calls go through a Lua function that lists the coroutine when first resumed in a call.
local function sb_wrap(f)
  local wrapped = co_wrap(f)
  local _, co = d_getupvalue(wrapped, 1)
  hooktable[co] = hook
  if permanent_count >= PERMANENT_CAPACITY or top >= SLOT_CAPACITY then
    compact()   -- frees the places of dead and finished ones
  end
  if permanent_count < PERMANENT_CAPACITY and top < SLOT_CAPACITY then
    permanent[co] = true
    permanent_count = permanent_count + 1
    push(co)
    return wrapped
  end
  return function(...)
    if in_slots[co] == nil then push(co) end
    return wrapped(...)
  end
end

------------------------------------------------------------------------------------------------
-- string: C functions that the hook cannot interrupt stay bounded
------------------------------------------------------------------------------------------------
local function sb_rep(s, n, sep)
  local len = s_len(s) + (sep ~= nil and s_len(sep) or 0)
  if len == 0 then
    s_format("%d", n)  -- validates n like string.rep; the C loop would spin n times for nothing
    return ""
  end
  return s_rep(s, n, sep)
end

local shape_cache, shape_cache_size = {}, 0
local class_cache, class_cache_size = {}, 0
local SPECIALS = "[%^%$%*%+%?%.%(%)%[%]%%%-]"
local s_char = string.char

-- The set of bytes a single-character class matches (cls: "a", "%d", "[%w_]", "."), as a table.
local function class_members(cls)
  local members = class_cache[cls]
  if members then return members end
  local probe = "^" .. (cls == "$" and "%$" or cls)
  members = {}
  for byte = 0, 255 do
    if s_find(s_char(byte), probe) then members[byte] = true end
  end
  if class_cache_size >= 256 then class_cache, class_cache_size = {}, 0 end
  class_cache[cls] = members
  class_cache_size = class_cache_size + 1
  return members
end

local function disjoint(a, b)
  local in_a = class_members(a)
  for byte in next, class_members(b) do
    if in_a[byte] then return false end
  end
  return true
end

-- Split a pattern into items: {cls = class text or nil, quant = "*"|"+"|"-"|"?"|nil, kind}.
local function pattern_items(p)
  local items, i, m = {}, 1, #p
  if s_byte(p, 1) == 94 then i = 2 end              -- leading ^ anchors
  while i <= m do
    local c = s_byte(p, i)
    local item
    if c == 40 or c == 41 then                      -- ( ) captures: consume nothing
      item = {kind = "capture", open = c == 40}
      i = i + 1
    elseif c == 36 and i == m then                  -- $ at the end anchors
      item = {kind = "end"}
      i = i + 1
    elseif c == 37 and s_byte(p, i + 1) == 98 then  -- %bxy
      local first = s_sub(p, i + 2, i + 2)
      if s_find(first, "^%W") then first = "%" .. first end
      item = {kind = "balance", first = first}
      i = i + 4
    elseif c == 37 and s_byte(p, i + 1) == 102 then -- %f[set]: zero width
      local j = i + 3
      if s_byte(p, j) == 94 then j = j + 1 end
      if s_byte(p, j) == 93 then j = j + 1 end
      while j <= m and s_byte(p, j) ~= 93 do j = j + (s_byte(p, j) == 37 and 2 or 1) end
      item = {kind = "frontier"}
      i = j + 1
    elseif c == 37 and (s_byte(p, i + 1) or 0) >= 48 and (s_byte(p, i + 1) or 0) <= 57 then
      item = {kind = "backref"}
      i = i + 2
    else
      local j = i
      if c == 37 then j = i + 1
      elseif c == 91 then                           -- [set]
        j = i + 1
        if s_byte(p, j) == 94 then j = j + 1 end
        if s_byte(p, j) == 93 then j = j + 1 end
        while j <= m and s_byte(p, j) ~= 93 do j = j + (s_byte(p, j) == 37 and 2 or 1) end
      end
      item = {kind = "single", cls = s_sub(p, i, j)}
      i = j + 1
      local q = s_byte(p, i)
      if q == 42 or q == 43 or q == 45 or q == 63 then
        item.quant = s_char(q)
        i = i + 1
      end
    end
    items[#items + 1] = item
  end
  return items
end

-- Does the rest of the pattern after items[k] fail at once wherever the class of items[k]
-- matches? Then a quantifier on items[k] never backtracks into the rest: its cost adds.
local function deterministic(items, k)
  local cls = items[k].cls
  for j = k + 1, #items do
    local item = items[j]
    if item.kind == "capture" then           -- transparent
    elseif item.kind == "end" then return true
    elseif item.kind == "balance" then return disjoint(cls, item.first)
    elseif item.kind == "single" and (item.quant == nil or item.quant == "+") then
      return disjoint(cls, item.cls)
    else return false end
  end
  return true                                 -- nothing follows: the longest run just matches
end

-- Windowing: a byte that no item of the pattern can consume (a separator) is never inside a
-- match, and the matcher cannot tell it from the end of the subject unless the pattern uses `$`,
-- `%f` or `%b`, or can match the empty string (gmatch and gsub would also match between bytes).
-- Such patterns can run over pieces of the subject that end at separators, one C call a piece.
local function escaped_set(bytes)
  local parts = {}
  for i = 1, #bytes do
    local ch = s_char(bytes[i])
    parts[i] = s_find(ch, "^%w") and ch or "%" .. ch
  end
  return t_concat(parts)
end

local function window_facts(shape, items)
  local usable, min_length, captures, positions = {}, 0, 0, false
  for k = 1, #items do
    local item = items[k]
    local kind = item.kind
    if kind == "end" or kind == "frontier" or kind == "balance" then return end
    if kind == "capture" then
      local next_item = items[k + 1]
      if item.open then
        captures = captures + 1
        if next_item and next_item.kind == "capture" and not next_item.open then positions = true end
      end
    elseif kind == "single" then
      for byte in next, class_members(item.cls) do usable[byte] = true end
      if item.quant == nil or item.quant == "+" then min_length = min_length + 1 end
    end
  end
  if min_length == 0 then return end
  local inside, outside = {}, {}
  for byte = 0, 255 do
    if usable[byte] then inside[#inside + 1] = byte else outside[#outside + 1] = byte end
  end
  if #outside == 0 then return end
  shape.separator = #outside <= #inside and "[" .. escaped_set(outside) .. "]"
    or "[^" .. escaped_set(inside) .. "]"
  shape.captures, shape.positions = captures, positions
end

-- Upper bound of the matcher's work from one start position: coeff * n^degree for a subject
-- of length n. A quantifier multiplies the work of the rest by n+1 unless it is deterministic.
local function pattern_shape(p)
  local shape = shape_cache[p]
  if shape then return shape end
  local items = pattern_items(p)
  local degree, coeff = 0, 1
  for k = #items, 1, -1 do
    local item = items[k]
    local kind, quant = item.kind, item.quant
    if kind == "balance" or kind == "backref"
       or (kind == "single" and quant ~= nil and quant ~= "?" and deterministic(items, k)) then
      if degree < 1 then degree = 1 end
      coeff = coeff + 1
    elseif kind == "single" and quant == "?" then
      coeff = 2 * coeff + 1
    elseif kind == "single" and quant ~= nil then
      degree, coeff = degree + 1, 2 * coeff
    else
      coeff = coeff + 1
    end
  end
  shape = {plain = s_find(p, SPECIALS) == nil, degree = degree, coeff = coeff,
           anchored = s_byte(p, 1) == 94, m = #p + 1}
  if not shape.anchored then window_facts(shape, items) end
  if shape_cache_size >= 512 then shape_cache, shape_cache_size = {}, 0 end
  shape_cache[p] = shape
  shape_cache_size = shape_cache_size + 1
  return shape
end

local function per_start_cost(n, shape)
  return shape.coeff * n ^ shape.degree
end

local function too_complex(p, total, level)
  error(s_format("pattern '%s' is too complex for this subject (about %.3g steps)",
    #p > 40 and s_sub(p, 1, 40) .. "..." or p, total), level + 1)
end

local function start_index(init, len)
  init = init or 1
  if init < 0 then init = len + init + 1; if init < 1 then init = 1 end
  elseif init == 0 then init = 1 end
  return init
end

local function windowed_plain_find(s, p, init)
  local m, len = #p, #s
  if m == 0 then return s_find(s, p, init, true) end
  local width = m_min(len + 1, (pattern_step_limit // m) + 1)
  local i = start_index(init, len)
  if i > len + 1 then return nil end
  while i <= len - m + 1 do
    local window = s_sub(s, i, i + width + m - 2)
    local a, b = s_find(window, p, 1, true)
    if a then return i + a - 1, i + b - 1 end
    i = i + width
  end
  if m == 0 then return i, i - 1 end
  return nil
end

-- find/match over a long subject: one anchored C match per start position, so each C call
-- stays small and the hook can stop the loop between them.
local function per_start(fn, s, p, init)
  local anchored = "^" .. p
  for i = start_index(init, #s), #s + 1 do
    local r = t_pack(fn(s, anchored, i))
    if r[1] ~= nil then return t_unpack(r, 1, r.n) end
  end
  return nil
end

-- The longest piece a windowed match may use: two pieces' work stays within the step limit.
local function window_size(shape)
  return m_floor((pattern_step_limit / shape.coeff) ^ (1 / (shape.degree + 1)) / 2)
end

local MIN_WINDOW = 64

local function guarded(s, p, plain)
  if type(s) ~= "string" or type(p) ~= "string" then return false end
  local n = #s + 1
  if plain then return n * (#p + 1) > pattern_step_limit, "plain" end
  local shape = pattern_shape(p)
  if shape.plain then return n * shape.m > pattern_step_limit, "plain" end
  local cost = per_start_cost(n, shape)
  local total = shape.anchored and cost or cost * n
  if total <= pattern_step_limit then return false end
  if shape.separator and window_size(shape) >= MIN_WINDOW then return true, "window", shape end
  if cost > pattern_step_limit or shape.anchored then too_complex(p, total, 3) end
  return true, "per_start", shape
end

-- The end of the piece starting at `first`: the whole rest when short, else the first separator
-- in the second half of a two-window span, or nil when there is none (then match per start).
local function piece_end(s, first, len, shape, size)
  if len - first + 1 <= 2 * size then return len end
  local from = first + size - 1
  local span = s_sub(s, from, from + size - 1)
  local at = s_find(span, shape.separator)
  if at == nil then return nil end
  return from + at - 1
end

-- Add `offset` to position captures (the only number values a match returns).
local function shifted(offset, ...)
  local n = select("#", ...)
  local values = {...}
  for i = 1, n do
    if type(values[i]) == "number" then values[i] = values[i] + offset end
  end
  return t_unpack(values, 1, n)
end

local function windowed_search(fn, s, p, init, shape)
  local len = #s
  local first = start_index(init, len)
  if first > len + 1 then return nil end
  local size = window_size(shape)
  while first <= len do
    local last = piece_end(s, first, len, shape, size)
    if last == nil then return per_start(fn, s, p, first) end
    local r = t_pack(fn(s_sub(s, first, last), p))
    if r[1] ~= nil then
      local offset = first - 1
      if fn == s_find then r[1], r[2] = r[1] + offset, r[2] + offset end
      if shape.positions then
        for i = (fn == s_find and 3 or 1), r.n do
          if type(r[i]) == "number" then r[i] = r[i] + offset end
        end
      end
      return t_unpack(r, 1, r.n)
    end
    first = last + 1
  end
  return nil
end

local function sb_find(s, p, init, plain)
  local slow, how, shape = guarded(s, p, plain)
  if not slow then return s_find(s, p, init, plain) end
  if how == "plain" then return windowed_plain_find(s, p, init) end
  if how == "window" then return windowed_search(s_find, s, p, init, shape) end
  return per_start(s_find, s, p, init)
end

local function sb_match(s, p, init)
  local slow, how, shape = guarded(s, p, false)
  if not slow then return s_match(s, p, init) end
  if how == "plain" then
    local a, b = windowed_plain_find(s, p, init)
    if a then return s_sub(s, a, b) end
    return nil
  end
  if how == "window" then return windowed_search(s_match, s, p, init, shape) end
  return per_start(s_match, s, p, init)
end

-- gmatch one match at a time over the subject from `src`: one anchored C match per position.
local function per_start_gmatch(s, p, src)
  local anchored, len, lastmatch = "^" .. p, #s, nil
  return function()
    while src <= len + 1 do
      local r = t_pack(s_find(s, anchored, src))
      local e = r[1] ~= nil and r[2] + 1
      if e and e ~= lastmatch then
        local start = src
        src, lastmatch = e, e
        if r.n > 2 then return t_unpack(r, 3, r.n) end
        return s_sub(s, start, e - 1)
      end
      src = src + 1
    end
    return nil
  end
end

-- gmatch over pieces: the C iterator of the current piece yields its matches.
local function windowed_gmatch(s, p, init, shape)
  local len, size = #s, window_size(shape)
  local first = start_index(init, len)
  if first > len + 1 then first = len + 1 end
  local it, offset, fallback = nil, 0, nil
  local function open()
    if first > len then return false end
    local last = piece_end(s, first, len, shape, size)
    if last == nil then
      fallback = per_start_gmatch(s, p, first)
      return true
    end
    it, offset = s_gmatch(s_sub(s, first, last), p), first - 1
    first = last + 1
    return true
  end
  if shape.captures <= 1 and not shape.positions then
    return function()
      while true do
        if fallback then return fallback() end
        if it then
          local value = it()
          if value ~= nil then return value end
          it = nil
        end
        if not open() then return nil end
      end
    end
  end
  local iterate
  local function forward(value, ...)
    if value == nil then
      it = nil
      return iterate()
    end
    if shape.positions then return shifted(offset, value, ...) end
    return value, ...
  end
  iterate = function()
    if fallback then return fallback() end
    if it == nil and not open() then return nil end
    if fallback then return fallback() end
    return forward(it())
  end
  return iterate
end

local function sb_gmatch(s, p, init)
  local slow, how, shape = guarded(s, p, false)
  if not slow then return s_gmatch(s, p, init) end
  if how == "window" then return windowed_gmatch(s, p, init, shape) end
  return per_start_gmatch(s, p, start_index(init, #s))
end

local function replacement(repl, kind, whole, r)
  if kind == "string" or kind == "number" then
    return (s_gsub(tostring(repl), "%%(.)", function(d)
      if d == "%" then return "%" end
      local index = tonumber(d)
      if not index then error("invalid use of '%' in replacement string", 0) end
      if index == 0 then return whole end
      local capture = r.n > 2 and r[2 + index] or (index == 1 and whole or nil)
      if capture == nil then error("invalid capture index %" .. index, 0) end
      return tostring(capture)
    end))
  end
  local value
  if kind == "table" then value = repl[r.n > 2 and r[3] or whole]
  elseif r.n > 2 then value = repl(t_unpack(r, 3, r.n))
  else value = repl(whole) end
  if value == nil or value == false then return whole end
  if type(value) ~= "string" and type(value) ~= "number" then
    error("invalid replacement value (a " .. type(value) .. ")", 0)
  end
  return value
end

local REPL_KINDS = {string = true, number = true, table = true, ["function"] = true}

-- gsub one position at a time from `src`, after `out` and `count` from earlier pieces.
local function per_start_gsub(s, p, repl, kind, max_n, src, out, count)
  local anchored, len = "^" .. p, #s
  local k, copied, lastmatch = #out, src, nil
  while max_n == nil or count < max_n do
    local r = t_pack(s_find(s, anchored, src))
    local e = r[1] ~= nil and r[2] + 1
    if e and e ~= lastmatch then
      count = count + 1
      out[k + 1] = s_sub(s, copied, src - 1)
      out[k + 2] = replacement(repl, kind, s_sub(s, src, e - 1), r)
      k = k + 2
      src, copied, lastmatch = e, e, e
    elseif src <= len then
      src = src + 1
    else
      break
    end
  end
  out[k + 1] = s_sub(s, copied)
  return t_concat(out), count
end

-- gsub over pieces ending at separators: one C gsub per piece.
local function windowed_gsub(s, p, repl, kind, max_n, shape)
  local len, size = #s, window_size(shape)
  local out, first, count = {}, 1, 0
  while first <= len do
    if max_n ~= nil and count >= max_n then break end
    local last = piece_end(s, first, len, shape, size)
    if last == nil then return per_start_gsub(s, p, repl, kind, max_n, first, out, count) end
    local piece, replaced = s_gsub(s_sub(s, first, last), p, repl,
      max_n ~= nil and max_n - count or nil)
    out[#out + 1] = piece
    count = count + replaced
    first = last + 1
  end
  out[#out + 1] = s_sub(s, first)
  return t_concat(out), count
end

local function sb_gsub(s, p, repl, max_n)
  local slow, how, shape = guarded(s, p, false)
  if not slow then return s_gsub(s, p, repl, max_n) end
  local kind = type(repl)
  if not REPL_KINDS[kind] then
    error("bad argument #3 to 'gsub' (string/function/table expected, got " .. kind .. ")", 2)
  end
  if how == "window" and not shape.positions then
    return windowed_gsub(s, p, repl, kind, max_n, shape)
  end
  return per_start_gsub(s, p, repl, kind, max_n, 1, {}, 0)
end

------------------------------------------------------------------------------------------------
-- table: a lying __len or a C __index must not drive a C loop for 2^62 rounds
------------------------------------------------------------------------------------------------
local MOVE_CHUNK = 4096

local function has_meta(t)
  return type(t) == "table" and d_getmetatable(t) ~= nil
end

-- copy t[i..j] through normal indexing (metamethods run as Lua, where the hook reaches them)
local function plain_range(t, i, j)
  local copy, k = {}, 0
  for index = i, j do
    k = k + 1
    copy[k] = t[index]
  end
  return copy, k
end

local function sb_move(a1, f, e, t, a2)
  if a2 == nil then a2 = a1 end
  if type(f) ~= "number" or type(e) ~= "number" or type(t) ~= "number" or e < f
     or e - f < MOVE_CHUNK then
    return t_move(a1, f, e, t, a2)
  end
  if t > f and t <= e and rawequal(a1, a2) then     -- overlapping forward move: back to front
    local hi = e
    while hi >= f do
      local lo = hi - MOVE_CHUNK + 1
      if lo < f then lo = f end
      t_move(a1, lo, hi, t + (lo - f), a2)
      hi = lo - 1
    end
  else
    local lo = f
    while lo <= e do
      local hi = lo + MOVE_CHUNK - 1
      if hi > e then hi = e end
      t_move(a1, lo, hi, t + (lo - f), a2)
      lo = hi + 1
    end
  end
  return a2
end

local function sb_insert(t, ...)
  if not has_meta(t) then return t_insert(t, ...) end
  local nargs = select("#", ...)
  local size = #t
  if nargs == 1 then
    t[size + 1] = ...
    return
  elseif nargs ~= 2 then
    error("wrong number of arguments to 'insert'", 2)
  end
  local pos, value = ...
  if m_type(pos) ~= "integer" then error("bad argument #2 to 'insert' (number expected)", 2) end
  if pos < 1 or pos > size + 1 then error("bad argument #2 to 'insert' (position out of bounds)", 2) end
  for i = size + 1, pos + 1, -1 do t[i] = t[i - 1] end
  t[pos] = value
end

local function sb_remove(t, pos)
  if not has_meta(t) then
    if pos == nil then return t_remove(t) end
    return t_remove(t, pos)
  end
  local size = #t
  if pos == nil then pos = size end
  if m_type(pos) ~= "integer" then error("bad argument #2 to 'remove' (number expected)", 2) end
  if size + 1 == pos then local v = t[pos]; t[pos] = nil; return v end
  if size ~= 0 and (pos < 1 or pos > size + 1) then
    error("bad argument #2 to 'remove' (position out of bounds)", 2)
  end
  local value = t[pos]
  for i = pos, size - 1 do t[i] = t[i + 1] end
  if pos <= size then t[size] = nil end
  return value
end

local function sb_sort(t, cmp)
  if not has_meta(t) then return t_sort(t, cmp) end
  local copy, n = plain_range(t, 1, #t)
  t_sort(copy, cmp)
  for i = 1, n do t[i] = copy[i] end
end

local function sb_concat(t, sep, i, j)
  if not has_meta(t) then return t_concat(t, sep, i, j) end
  i = i or 1
  if j == nil then j = #t end
  return t_concat((plain_range(t, i, j)), sep)
end

local function sb_unpack(t, i, j)
  if not has_meta(t) then return t_unpack(t, i, j) end
  i = i or 1
  if j == nil then j = #t end
  if j - i >= 1000000 then error("too many results to unpack", 2) end
  local copy, n = plain_range(t, i, j)
  return t_unpack(copy, 1, n)
end

------------------------------------------------------------------------------------------------
-- The script environment
------------------------------------------------------------------------------------------------
local function copy_library(lib, skip)
  local copy = {}
  for k, v in next, lib do
    if not (skip and skip[k]) then copy[k] = v end
  end
  return copy
end

local make_env
local extensions = {}   -- globals added by host extensions (the ECS `world` API), in every env

if trusted then
  -- engine-owned code and baselines: the whole standard library, print still goes to the host
  _G.print = sb_print
  make_env = function() return _G end
else
  local sb_string = copy_library(string, {dump = true})
  sb_string.rep, sb_string.find, sb_string.match = sb_rep, sb_find, sb_match
  sb_string.gmatch, sb_string.gsub = sb_gmatch, sb_gsub

  local sb_table = copy_library(table)
  sb_table.move, sb_table.insert, sb_table.remove = sb_move, sb_insert, sb_remove
  sb_table.sort, sb_table.concat, sb_table.unpack = sb_sort, sb_concat, sb_unpack

  local sb_coroutine = copy_library(coroutine)
  sb_coroutine.create, sb_coroutine.resume = sb_create, sb_resume
  sb_coroutine.wrap, sb_coroutine.close = sb_wrap, sb_close
  local sb_math, sb_utf8 = copy_library(math), copy_library(utf8)

  -- A fresh global table for script code. The library tables are shared by the environments
  -- of one context (they belong to the same script).
  make_env = function()
    local fresh = {
      assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
      pcall = sb_pcall, xpcall = sb_xpcall, rawequal = rawequal, rawget = rawget,
      rawlen = rawlen, rawset = rawset, select = select, setmetatable = setmetatable,
      getmetatable = getmetatable, tonumber = tonumber, tostring = tostring, type = type,
      _VERSION = _VERSION, print = sb_print, load = sb_load, collectgarbage = sb_collectgarbage,
      string = sb_string, table = sb_table, math = sb_math, coroutine = sb_coroutine,
      utf8 = sb_utf8,
    }
    fresh._G = fresh
    for name, value in next, extensions do fresh[name] = value end
    return fresh
  end

  -- string methods ("x"):find(...) resolve through the sandboxed string table
  d_getmetatable("").__index = sb_string
end
env = make_env()

-- Results leave the sandbox as plain data: fresh tables without metatables, no cycles, no
-- functions, threads or userdata.
local MAX_EXPORT_DEPTH = 100
local function export_value(v, depth, seen)
  local t = type(v)
  if t == "table" then
    if seen[v] then return "<cycle>" end
    if depth >= MAX_EXPORT_DEPTH then error("result nested deeper than 100 tables", 0) end
    seen[v] = true
    local out = {}
    for k, item in next, v do
      local kt = type(k)
      if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then k = "<" .. kt .. ">" end
      rawset(out, k, export_value(item, depth + 1, seen))
    end
    seen[v] = nil
    return out
  elseif t == "function" or t == "thread" or t == "userdata" then
    return "<" .. t .. ">"
  end
  return v
end

local EXPORTED = "\0exported"
local SCALAR = {["nil"] = true, boolean = true, number = true, string = true}

-- Scalars pass as they are; anything else comes back as EXPORTED and one plain table.
local function results(...)
  local n = select("#", ...)
  local values = {...}
  for i = 1, n do
    if not SCALAR[type(values[i])] then
      local out = {n = n}
      for j = 1, n do out[j] = export_value(values[j], 0, {}) end
      return EXPORTED, out
    end
  end
  return ...
end

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
  fn()
  env = fresh
  return true
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
    type = type, error = error, pcall = pcall, xpcall = xpcall, select = select, next = next,
    rawget = rawget, rawset = rawset, rawlen = rawlen, tostring = tostring,
    setmetatable = setmetatable,
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

return {
  env = env,
  install = install,
  invoke = invoke,
  apply = apply,
  stage = stage,
  event_names = s_format("%p %p %p %p", "__index", "__newindex", "__gc", "__mode"),
  gc_disabled = s_format("%p", GC_DISABLED),
  execute = execute,
  call = call,
  exported = EXPORTED,
  after_stop = after_stop,
  outcome = outcome,
  collect = function() collectgarbage("collect") end,
  slots = s_format("%p", slots),
  slot_capacity = SLOT_CAPACITY,
  main = s_format("%p", main),
}
