package anomaly

import (
	"math"
	"strings"
)

const earthRadiusKm = 6371.0088 // mean Earth radius (IUGG)

// haversineKm is the great-circle distance between two points in degrees.
func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	s1, s2 := math.Sin(dLat/2), math.Sin(dLon/2)
	a := s1*s1 + math.Cos(lat1*rad)*math.Cos(lat2*rad)*s2*s2
	if a > 1 {
		a = 1
	}
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(a))
}

// Coordinates are kept as int32 in units of 1e-5 degree (about 1 m).
const coordScale = 1e5

func toCoord(deg float64) int32 { return int32(math.Round(deg * coordScale)) }

func fromCoord(c int32) float64 { return math.Round(float64(c)) / coordScale }

// continentCode maps the two-letter continent codes to small numbers
// (0 = unknown): AF AN AS EU NA OC SA are 1..7.
func continentCode(s string) uint8 {
	if len(s) != 2 {
		return 0
	}
	switch s {
	case "AF":
		return 1
	case "AN":
		return 2
	case "AS":
		return 3
	case "EU":
		return 4
	case "NA":
		return 5
	case "OC":
		return 6
	case "SA":
		return 7
	}
	return 0
}

// uaFamily is a coarse client-software family derived from the User-Agent. Two
// uses of one token by different known families are two different clients.
type uaFamily uint8

const (
	famUnknown uaFamily = iota
	famChrome
	famFirefox
	famSafari
	famEdge
	famOpera
	famSamsung
	famOtherBrowser
	famOkHTTP
	famCFNetwork
	famCurl
	famWget
	famPythonRequests
	famPython
	famGo
	famJava
	famNode
	famDotNet
	famPowerShell
	famPostman
	famRuby
	famPHP
	famRust
	famOther
	famCount
)

var famNames = [famCount]string{
	"unknown", "Chrome", "Firefox", "Safari", "Edge", "Opera", "Samsung Internet", "browser",
	"OkHttp", "CFNetwork", "curl", "Wget", "python-requests", "Python", "Go", "Java", "Node.js",
	".NET", "PowerShell", "Postman", "Ruby", "PHP", "Rust", "other",
}

func (f uaFamily) String() string {
	if f < famCount {
		return famNames[f]
	}
	return "unknown"
}

// known reports whether f says something about the client (not unknown/other).
func (f uaFamily) known() bool { return f != famUnknown && f != famOther }

// toolPrefixes are matched at the start of non-browser user agents, in order.
var toolPrefixes = [...]struct {
	prefix string
	fam    uaFamily
}{
	{"okhttp/", famOkHTTP},
	{"curl/", famCurl},
	{"Wget/", famWget},
	{"python-requests/", famPythonRequests},
	{"Python-urllib/", famPython},
	{"python-httpx/", famPython},
	{"aiohttp/", famPython},
	{"Python/", famPython},
	{"Go-http-client/", famGo},
	{"Java/", famJava},
	{"Apache-HttpClient/", famJava},
	{"Jakarta Commons-HttpClient/", famJava},
	{"axios/", famNode},
	{"node-fetch/", famNode},
	{"node", famNode},
	{"undici", famNode},
	{"got ", famNode},
	{"PostmanRuntime/", famPostman},
	{"Ruby", famRuby},
	{"Faraday", famRuby},
	{"GuzzleHttp/", famPHP},
	{"PHP", famPHP},
	{"reqwest/", famRust},
	{"Dalvik/", famOkHTTP}, // Android system HTTP stack
}

// classifyUA maps a User-Agent to its family. It allocates nothing.
func classifyUA(ua string) uaFamily {
	if ua == "" || ua == "-" {
		return famUnknown
	}
	if strings.HasPrefix(ua, "Mozilla/") {
		switch {
		case strings.Contains(ua, "PowerShell/"):
			return famPowerShell
		case strings.Contains(ua, "Edg/") || strings.Contains(ua, "Edge/") || strings.Contains(ua, "EdgA/") || strings.Contains(ua, "EdgiOS/"):
			return famEdge
		case strings.Contains(ua, "OPR/") || strings.Contains(ua, "Opera"):
			return famOpera
		case strings.Contains(ua, "SamsungBrowser/"):
			return famSamsung
		case strings.Contains(ua, "Firefox/") || strings.Contains(ua, "FxiOS/"):
			return famFirefox
		case strings.Contains(ua, "Chrome/") || strings.Contains(ua, "CriOS/") || strings.Contains(ua, "Chromium/"):
			return famChrome
		case strings.Contains(ua, "Safari/") || strings.Contains(ua, "AppleWebKit/"):
			return famSafari
		}
		return famOtherBrowser
	}
	if strings.Contains(ua, "CFNetwork/") {
		return famCFNetwork
	}
	for _, p := range toolPrefixes {
		if len(ua) >= len(p.prefix) && strings.EqualFold(ua[:len(p.prefix)], p.prefix) {
			return p.fam
		}
	}
	if strings.HasPrefix(ua, "Microsoft.NET") || strings.Contains(ua, ".NET CLR") || strings.HasPrefix(ua, "RestSharp") {
		return famDotNet
	}
	return famOther
}
