-- Orthanc auto-routing to Rectifier (IHE AIR's "request processing" without a human):
-- when a study has received no new instance for StableAge seconds, ask Rectifier to pull
-- it over DICOMweb, classify every image and store a Structured Report back here.
--
-- Environment (read by Orthanc's process):
--   RECTIFIER_URL      the service's root, e.g. http://api:8000 (required)
--   RECTIFIER_MODEL    the model to use; unset: the service's default model
--   RECTIFIER_API_KEY  sent as "Authorization: Bearer <key>" when the service needs one
--
-- A study that already holds a Rectifier report (a series whose Manufacturer is
-- "Rectifier") is not sent again: storing the report makes the study unstable once more,
-- and without this check every report would trigger the next one. Nothing here logs
-- patient data: only Orthanc's study id and the service's status line.

local REPORT_MANUFACTURER = 'Rectifier'

local function has_report(studyId)
  local series = ParseJson(RestApiGet('/studies/' .. studyId .. '/series'))
  for _, s in ipairs(series) do
    local tags = s['MainDicomTags'] or {}
    if tags['Manufacturer'] == REPORT_MANUFACTURER then
      return true
    end
  end
  return false
end

local function pull_url(studyUid)
  local root = os.getenv('RECTIFIER_URL')
  if root == nil or root == '' then
    return nil
  end
  root = string.gsub(root, '/+$', '')
  local model = os.getenv('RECTIFIER_MODEL')
  if model ~= nil and model ~= '' then
    return root .. '/v1/models/' .. model .. '/dicomweb/studies/' .. studyUid
  end
  return root .. '/v1/dicomweb/studies/' .. studyUid
end

function OnStableStudy(studyId, tags, metadata)
  if has_report(studyId) then
    return
  end
  local url = pull_url(tags['StudyInstanceUID'])
  if url == nil then
    print('rectifier: RECTIFIER_URL is not set; study ' .. studyId .. ' not sent')
    return
  end
  -- respond-async: Orthanc's HTTP server waits while this hook runs, so Rectifier must
  -- answer at once (202) and pull afterwards.
  local headers = { ['Content-Type'] = 'application/json', ['Prefer'] = 'respond-async' }
  local key = os.getenv('RECTIFIER_API_KEY')
  if key ~= nil and key ~= '' then
    headers['Authorization'] = 'Bearer ' .. key
  end
  local ok, answer = pcall(HttpPost, url, '', headers)
  if ok and answer ~= nil then
    print('rectifier: study ' .. studyId .. ' reported')
  else
    print('rectifier: study ' .. studyId .. ' was not reported (the service refused or failed)')
  end
end
