-- instances.lua: the instances of one script (one per entity running it, each with its `self`)
-- and the lifecycle calls owed to them. Installed once, trusted, just before world.lua, which
-- receives this module (see _world_api.py).
-- Uses: the sandbox kit's `freeze` (an instance's read-only `self.params`). Provides: `sync` and
-- `instance_list` for the ScriptSystem, and for world.lua `current` (the state, adopted at the
-- start of each batch), `next_owed` and `receiver`.
--
-- The bookkeeping is not part of the script's tick: the ScriptSystem calls `sync` only when the
-- script's entities changed, in a watched call of its own with the memory limit lifted, and
-- passes the whole entity list, sorted. `sync` rebuilds the maps in one pass, O(n), and is all
-- or nothing: it builds the new state aside and puts it in place with one assignment, so a sync
-- stopped part-way (time limit, memory error) leaves the previous state whole.
--
-- on_start and on_destroy are owed, not lost: `sync` queues them (what earlier ticks left, then
-- the ended instances, then the new ones, each in entity order), and world.lua's tick takes
-- them one by one. A call leaves the queue just before it runs, so a tick that stops half-way
-- (time limit, memory error) leaves the rest for the next tick, and no call runs twice.
--
-- A new instance's `self` is {entity = ..., params = ...}: `params` is the read-only view of
-- what its Script component gave (the host passes the params of new instances only, so each is
-- converted and frozen once, when the instance starts), or one shared empty view.
local kit = ...
local freeze = kit.freeze
local NO_PARAMS = freeze({}, "params")

-- state.order: the entities, ascending (the host's list); state.instances: entity -> self;
-- state.slot_of: entity -> its place in `order`; state.owed: the queue, owed.entity[i],
-- owed.self[i], owed.start[i] (on_start or on_destroy) for i = owed.first .. owed.last;
-- state.unstarted, state.ending: entity -> self of an instance whose on_start, or on_destroy, is
-- still owed.
local function empty_state()
  return {order = {}, instances = {}, slot_of = {}, unstarted = {}, ending = {},
          owed = {first = 1, last = 0, entity = {}, self = {}, start = {}}}
end

local state = empty_state()

-- Adopt `list` (the script's entities, ascending, each once) as the instance list: instances
-- not in it end, entities new in it start; `params`: entity -> params of new instances, or nil.
-- Returns the number of instances.
local function sync(list, params)
  local old = state
  local old_instances, old_order, old_owed = old.instances, old.order, old.owed
  local instances, slot_of, unstarted, ending = {}, {}, {}, {}
  local entities, selves, starts = {}, {}, {}
  local n = 0
  local from_entity, from_self, from_start = old_owed.entity, old_owed.self, old_owed.start
  for i = old_owed.first, old_owed.last do   -- what earlier ticks did not deliver comes first
    local entity, self, start = from_entity[i], from_self[i], from_start[i]
    n = n + 1
    entities[n], selves[n], starts[n] = entity, self, start
    if start then unstarted[entity] = self else ending[entity] = self end
  end
  local total = #list
  for i = 1, total do slot_of[list[i]] = i end
  for i = 1, #old_order do
    local entity = old_order[i]
    if slot_of[entity] == nil then
      local self = old_instances[entity]
      n = n + 1
      entities[n], selves[n], starts[n] = entity, self, false
      ending[entity] = self
    end
  end
  for i = 1, total do
    local entity = list[i]
    local self = old_instances[entity]
    if self == nil then
      local given = params and params[entity]
      self = {entity = entity, params = given and freeze(given, "params") or NO_PARAMS}
      n = n + 1
      entities[n], selves[n], starts[n] = entity, self, true
      unstarted[entity] = self
    end
    instances[entity] = self
  end
  state = {order = list, instances = instances, slot_of = slot_of, unstarted = unstarted,
           ending = ending,
           owed = {first = 1, last = n, entity = entities, self = selves, start = starts}}
  return total
end

-- The next owed lifecycle call as (callback name, entity, self), taken off the queue; nothing
-- when none is owed.
local function next_owed()
  local current = state
  local owed = current.owed
  local i = owed.first
  if i > owed.last then return end
  local entity, self, start = owed.entity[i], owed.self[i], owed.start[i]
  owed.first = i + 1
  owed.entity[i], owed.self[i] = nil, nil
  if start then
    if current.unstarted[entity] == self then current.unstarted[entity] = nil end
    return "on_start", entity, self
  end
  if current.ending[entity] == self then current.ending[entity] = nil end
  return "on_destroy", entity, self
end

-- The `self` that receives an event sent to `entity`: its running instance, or an ended one
-- whose on_destroy is still owed; nil for an instance whose on_start has not run yet (it did not
-- exist when the event was sent).
local function receiver(entity)
  local current = state
  local self = current.instances[entity] or current.ending[entity]
  if self == nil or current.unstarted[entity] == self then return nil end
  return self
end

-- The entities that have a running instance, ascending.
local function instance_list()
  local order, copy = state.order, {}
  for i = 1, #order do copy[i] = order[i] end
  return copy
end

return {sync = sync, next_owed = next_owed, receiver = receiver, instance_list = instance_list,
        current = function() return state end}
