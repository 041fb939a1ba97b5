-- saves.lua: saving and loading one script's instances (ScriptManager.save_state and
-- load_state). Installed once, trusted, by WorldApi (see _world_api.py) after instances.lua and
-- before world.lua, whose tick calls `deliver` after the owed on_destroy/on_start calls whenever
-- loaded data waits (`due`).
-- Uses: the sandbox kit, the caps (_saves.py's SAVE_CAPS), instances.lua's module, and a host
-- function that logs data dropped for entities without an instance.
-- Provides: `save` (the instances' data as JSON text, in chunks), `last_saved`,
-- `stage`/`commit`/`discard` (load_state's data: staged in every script first, then put in
-- place), `deliver` and `due` (world.lua's tick).
--
-- Saving runs script code (on_save) in watched calls. Each result is checked and encoded as
-- JSON text as soon as its on_save returns (raw reads only: tables with metatables are refused,
-- so no metamethod runs and no weak table is involved), so no later on_save can change what was
-- checked, and the host only parses text: no Lua value crosses one by one.
local kit, caps, roster, report_dropped, checks = ...

local type, error, next, rawget, rawset, rawequal, xpcall, pcall, tostring, getmetatable =
  kit.type, kit.error, kit.next, kit.rawget, kit.rawset, kit.rawequal, kit.xpcall, kit.pcall,
  kit.tostring, kit.getmetatable
local s_format, s_len, s_sub, s_find, m_type, utf8_len, huge, t_unpack, t_concat =
  kit.s_format, kit.s_len, kit.s_sub, kit.s_find, kit.m_type, kit.utf8_len, kit.huge,
  kit.t_unpack, kit.t_concat
local current_env, freeze = kit.current_env, kit.freeze

local MAX_DEPTH = caps.max_depth    -- nested tables in one instance's data
local MAX_ITEMS = caps.max_items    -- table entries in one instance's data, all levels together
local MAX_TEXT = caps.max_text      -- bytes in one string (keys included)
local MAX_BYTES = caps.max_bytes    -- bytes of all the strings of one instance's data
local MAX_SCRIPT_ITEMS = caps.max_script_items   -- the same, all instances of a save together
local MAX_SCRIPT_BYTES = caps.max_script_bytes
local MAX_DROPPED_NAMED = 16        -- entities named in one report of dropped data

local saves = {due = false}
-- load_state's data: {entities = {...}, data = {...}, index = {entity -> i}, first, last,
-- map = the read-only entity map}; `staged` until every script has its own, then `pending`
-- until a tick delivers it. data[i] may be nil (on_save returned nothing).
local staged, pending = nil, nil
local saving, saving_callback = nil, nil   -- the entity being saved (`last_saved`)

------------------------------------------------------------------------------------------------
-- Checking and encoding data: JSON values only (see docs/scripting.md "Save and load")
------------------------------------------------------------------------------------------------
local keys = {}          -- keys[d]: the key of the table entry being checked at depth d
local on_path = {}       -- tables being checked, from the root down (a cycle meets one again)
local items, bytes = 0, 0
local bad = nil          -- {depth, message} of the first bad value
local parts, n = {}, 0   -- the JSON text of the chunk being saved, in pieces

-- JSON's escapes for the characters a string may not hold as they are (%c: controls and DEL)
local ESCAPES = {['"'] = '\\"', ["\\"] = "\\\\"}
for code = 0, 31 do ESCAPES[s_format("%c", code)] = s_format("\\u%04x", code) end
ESCAPES[s_format("%c", 127)] = "\\u007f"
local SPECIAL = '[%c"\\]'

local function emit(piece)
  n = n + 1
  parts[n] = piece
end

local function emit_string(value)
  local from = s_find(value, SPECIAL)
  if from == nil then
    emit('"' .. value .. '"')
    return
  end
  emit('"')
  local at = 1
  while from do
    if from > at then emit(s_sub(value, at, from - 1)) end
    emit(ESCAPES[s_sub(value, from, from)])
    at = from + 1
    from = s_find(value, SPECIAL, at)
  end
  emit(s_sub(value, at))
  emit('"')
end

local function fail(depth, message, ...)
  bad = {depth = depth, message = s_format(message, ...)}
  return false
end

local function text_ok(value, depth)
  local size = s_len(value)
  bytes = bytes + size
  if size > MAX_TEXT then return fail(depth, "a string longer than %d bytes", MAX_TEXT) end
  if bytes > MAX_BYTES then
    return fail(depth, "more than %d bytes of strings in one instance's data", MAX_BYTES)
  end
  if utf8_len(value) == nil then return fail(depth, "a string that is not valid UTF-8") end
  return true
end

local encode
-- A table: a list (keys 1..n) or an object (string keys; also the empty table). The keys are
-- checked first (a list is emitted in order, an object in `next`'s), then the values.
local function encode_table(value, depth)
  if getmetatable(value) ~= nil then
    return fail(depth, "a table with a metatable (not plain data: read-only views such as "
      .. "config and self.params, and objects, are saved by copying their fields)")
  end
  if on_path[value] then return fail(depth, "a reference cycle") end
  if depth > MAX_DEPTH then
    return fail(depth, "a table nested deeper than %d levels", MAX_DEPTH)
  end
  on_path[value] = true
  local kind, count, top = nil, 0, 0
  for k in next, value do
    keys[depth] = k
    count, items = count + 1, items + 1
    if items > MAX_ITEMS then
      return fail(depth + 1, "more than %d table entries in one instance's data", MAX_ITEMS)
    end
    local key_kind = type(k)
    if key_kind == "string" then
      if not text_ok(k, depth + 1) then return false end
    elseif m_type(k) == "integer" and k >= 1 then
      key_kind = "integer"
      if k > top then top = k end
    else
      local what = m_type(k) == "integer" and "an integer key below 1"
        or "a " .. (m_type(k) or key_kind) .. " key"
      return fail(depth + 1, "%s (keys are strings, or 1..n in a list)", what)
    end
    if kind ~= key_kind then
      if kind then return fail(depth, "a table with both string and integer keys") end
      kind = key_kind
    end
  end
  -- (no metatable: indexing is raw; `n` and `parts` are written inline on this hot path)
  if kind == "integer" then
    if top ~= count then return fail(depth, "a list with holes (integer keys must be 1..n)") end
    n = n + 1
    parts[n] = "["
    for i = 1, count do
      keys[depth] = i
      if i > 1 then n = n + 1 parts[n] = "," end
      if not encode(value[i], depth + 1) then return false end
    end
    n = n + 1
    parts[n] = "]"
  else
    n = n + 1
    parts[n] = "{"
    local first = true
    for k, v in next, value do
      keys[depth] = k
      if first then first = false else n = n + 1 parts[n] = "," end
      emit_string(k)
      n = n + 1
      parts[n] = ":"
      if not encode(v, depth + 1) then return false end
    end
    n = n + 1
    parts[n] = "}"
  end
  on_path[value] = nil
  return true
end

-- Append the JSON text of `value` at `depth` (1: the data itself) to `parts`; false, with
-- `bad` saying why, when it is not JSON data.
encode = function(value, depth)
  local kind = type(value)
  if kind == "table" then return encode_table(value, depth) end
  if kind == "string" then
    if not text_ok(value, depth) then return false end
    emit_string(value)
  elseif kind == "number" then
    if m_type(value) == "integer" then
      n = n + 1
      parts[n] = s_format("%d", value)
    elseif value ~= value or value == huge or value == -huge then
      return fail(depth, "%s (JSON has no NaN or infinity)",
        value ~= value and "NaN" or value > 0 and "inf" or "-inf")
    else
      local text = s_format("%.17g", value)   -- exact; a float stays a float in JSON
      emit(s_find(text, "[.en]") and text or text .. ".0")
    end
  elseif kind == "boolean" then
    emit(value and "true" or "false")
  elseif kind == "nil" then
    emit("null")
  else
    return fail(depth, "a %s (not plain data)", kind)
  end
  return true
end

local function path_of(root, depth)
  local steps = {root}
  for d = 1, depth - 1 do
    local k = keys[d]
    if type(k) == "string" then
      local short = s_len(k) <= 64
      steps[d + 1] = short and s_find(k, "^[%a_][%w_]*$") and "." .. k
        or s_format("[%q]", short and k or s_sub(k, 1, 64) .. "...")
    else   -- never tostring of a table: its __tostring is script code
      steps[d + 1] = "[" .. (type(k) == "number" and tostring(k) or "<" .. type(k) .. ">") .. "]"
    end
  end
  return t_concat(steps)
end

------------------------------------------------------------------------------------------------
-- Saving
------------------------------------------------------------------------------------------------
-- A value of `self` the default leaves out: the entity, the params, and what is not plain data.
local function skipped(key, value)
  if key == "entity" or key == "params" then return true end
  local kind = type(value)
  return kind == "function" or kind == "thread" or kind == "userdata"
    or (kind == "table" and getmetatable(value) ~= nil)
end

-- The default data of an instance: its fields, without what `skipped` leaves out.
local function fields(self)
  local kept = {}
  for k, v in next, self do
    if not skipped(k, v) then rawset(kept, k, v) end
  end
  return kept
end

-- Levels below on_save: xpcall, save, and the host's xpcall (see world.lua's handler).
local handler = checks.error_handler(6)

-- The save under way: the instances to save ({entity, self} pairs, ascending), then the loaded
-- data not delivered yet; `next` is the first left.
local job = nil
local CHUNK_PIECES = 20000   -- a call returns once its text has this many pieces

local function failed(entity, kind, message, path)
  job, parts, n, keys, on_path = nil, {}, 0, {}, {}   -- hold no script tables
  saving, saving_callback = nil, nil
  return false, entity, kind, message, path
end

local function start_job()
  local state = roster.current()
  local order, instances, unstarted = state.order, state.instances, state.unstarted
  local held = pending and pending.index or {}
  local todo, count = {}, 0
  for i = 1, #order do
    local entity = order[i]
    local self = instances[entity]
    if held[entity] == nil and unstarted[entity] ~= self then   -- on_start ran
      count = count + 1
      todo[count] = {entity, self}
    end
  end
  if pending then
    for i = pending.first, pending.last do
      count = count + 1
      todo[count] = {pending.entities[i], pending.data[i], loaded = true}
    end
  end
  local on_save = rawget(current_env(), "on_save")
  job = {todo = todo, count = count, next = 1, items = 0, bytes = 0,
         on_save = type(on_save) == "function" and on_save or nil}
end

-- The next chunk of the save (`first`: start a new one): every started instance's data as
-- on_save(self) returns it or as `fields` takes it, then the data loaded but not delivered yet.
-- Each instance's data is checked and encoded as soon as its on_save returns, so no later
-- on_save can change it. Returns true, the chunk's JSON text ([[entity, data], ...]) and
-- whether more follows; or false, the entity, the kind of failure ("data", "runtime",
-- "memory", "recursion"), the message and, for data, the path of the offending value.
local function save(first)
  if first then start_job() end
  local todo, on_save = job.todo, job.on_save
  parts, n = {}, 0
  emit("[")
  local at = job.next
  while at <= job.count and n < CHUNK_PIECES do
    local entity, value = todo[at][1], todo[at][2]
    local root = "loaded data"
    if not todo[at].loaded then
      saving, saving_callback = entity, on_save and "on_save"
      if on_save then
        root = "on_save(self)"
        local ok, result = xpcall(on_save, handler, value)
        if not ok then
          result = checks.error_record(result)
          return failed(entity, result.kind, result.message)
        end
        -- `return self` saves what the default would (its entity and params left out)
        value = rawequal(result, value) and fields(value) or result
      else
        root, value = "self", fields(value)
      end
      saving_callback = nil
    end
    if n > 1 then emit(",") end
    emit(s_format("[%d,", entity))
    items, bytes, on_path = 0, 0, {}
    if not encode(value, 1) then
      return failed(entity, "data", bad.message, path_of(root, bad.depth))
    end
    job.items, job.bytes = job.items + items, job.bytes + bytes
    if job.items > MAX_SCRIPT_ITEMS or job.bytes > MAX_SCRIPT_BYTES then
      return failed(entity, "data", s_format("more than %d table entries or %d bytes of "
        .. "strings in the data of all the script's instances together", MAX_SCRIPT_ITEMS,
        MAX_SCRIPT_BYTES), root)
    end
    emit("]")
    at = at + 1
  end
  emit("]")
  job.next = at
  local text = t_concat(parts, "", 1, n)
  parts, n, saving, keys = {}, 0, nil, {}
  if at > job.count then job = nil end
  return true, text, job ~= nil
end

-- The entity whose data was being saved when a call stopped, and "on_save" when its on_save
-- was running (nil when its data was being checked).
local function last_saved()
  local entity, callback = saving, saving_callback
  saving, saving_callback = nil, nil
  return entity, callback
end

------------------------------------------------------------------------------------------------
-- Loading
------------------------------------------------------------------------------------------------
-- Keep `list` ({{entity, data}, ...}, checked by the host, entities once each) and `map` (saved
-- entity -> new entity) aside until `commit`. Runs under the memory limit, so data that does not
-- fit fails here, before any script's data is in place.
local function stage(list, map)
  local entities, data, index = {}, {}, {}
  local n = #list
  for i = 1, n do
    local pair = list[i]
    entities[i], data[i] = pair[1], pair[2]
    index[pair[1]] = i
  end
  staged = {entities = entities, data = data, index = index, first = 1, last = n,
            map = freeze(map, "entity_map")}
  return 0
end

-- Put the staged data in place of any still pending (allocates nothing).
local function commit()
  pending, staged = staged, nil
  saves.due = pending ~= nil
  return 0
end

local function discard()
  staged = nil
  return 0
end

-- Without on_load: a table of fields merges into self (never `entity` or `params`).
local function merge(self, data)
  if data == nil then return end
  if type(data) ~= "table" then
    error("no on_load(self, data) to take the saved " .. type(data)
      .. " (only a table of fields merges into self)", 0)
  end
  for k in next, data do
    if type(k) ~= "string" then
      error("no on_load(self, data) to take the saved list (only a table of fields merges "
        .. "into self)", 0)
    end
  end
  for k, v in next, data do
    if k ~= "entity" and k ~= "params" then rawset(self, k, v) end
  end
end

-- Hand every pending entry to its instance: on_load(self, data, entity_map) through world.lua's
-- `run` (an error is recorded like any callback's), or `merge`. Each entry leaves the queue
-- before it is handed over, so a tick stopped half-way goes on with the next one in the next
-- tick, and none is delivered twice. Data for an entity without an instance is dropped (the
-- host logs it).
function saves.deliver(run, record)
  local loaded = pending
  local instances = roster.current().instances
  local on_load = rawget(current_env(), "on_load")
  local named, dropped = {}, 0
  while loaded.first <= loaded.last do
    local i = loaded.first
    local entity, data = loaded.entities[i], loaded.data[i]
    loaded.first = i + 1
    loaded.entities[i], loaded.data[i], loaded.index[entity] = nil, nil, nil
    local self = instances[entity]
    if self == nil then
      dropped = dropped + 1
      if dropped <= MAX_DROPPED_NAMED then named[dropped] = entity end
    elseif type(on_load) == "function" then
      run("on_load", entity, self, data, loaded.map)
    else
      local ok, err = pcall(merge, self, data)
      if not ok then record(err, entity, "on_load") end
    end
  end
  pending, saves.due = nil, false
  if dropped > 0 then report_dropped(dropped, t_unpack(named, 1, #named)) end
end

saves.save, saves.last_saved = save, last_saved
saves.stage, saves.commit, saves.discard = stage, commit, discard
return saves
