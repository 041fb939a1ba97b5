-- flooder_heavy.lua (hostile): prints ten times as much as flooder.lua, 100,000 lines a tick
-- (about 10 ms of work here). Capped like any flood; it stays enabled unless a tight time budget
-- on a loaded machine stops it.
function on_update(self)
  for i = 1, 1e5 do print(i) end
end
