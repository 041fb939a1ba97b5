-- escaper_routes.lua (hostile): tries three ways out, each inside pcall: a binary chunk,
-- string.dump through the string metatable, and lupa's python object. The binary chunk is a
-- security violation (the script is disabled); the other two are simply absent.
function on_update(self)
  pcall(load, string.char(27) .. "Lua")
  pcall(function() return getmetatable("").__index.dump end)
  local ok = pcall(function() return python.eval("1") end)
end
