-- from(t, first): t's items from `first` on; a script that includes another's function
-- hands it its own keys and arguments this way.
local function from(t, first)
  local rest = {}
  for i = first, #t do rest[#rest + 1] = t[i] end
  return rest
end
