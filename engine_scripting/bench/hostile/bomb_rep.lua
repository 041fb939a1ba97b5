-- bomb_rep.lua (hostile): tries to eat all memory with 100 KB strings straight from
-- string.rep, every one of them live. The memory limit stops it every tick until it is disabled
-- (or the time limit does, first: filling 8 MiB takes 50-200 ms, longer than a tight budget).
function on_update(self)
  local t = {}
  for i = 1, 1e9 do t[i] = ("x"):rep(1e5) end
end
