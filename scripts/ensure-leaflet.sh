#!/usr/bin/env bash
# The world viewer's map library (GET /): Debian's libjs-leaflet, which the API serves from
# /usr/share/javascript/leaflet (VWE_VIEWER_LEAFLET_DIR) so the browser fetches nothing from the
# internet. Installs only when missing; prints nothing when it is there.
source "$(dirname "$0")/common.sh"
dir=${VWE_VIEWER_LEAFLET_DIR:-/usr/share/javascript/leaflet}
if [ -f "$dir/leaflet.min.js" ] && [ -f "$dir/leaflet.css" ]; then
  exit 0
fi
log "installing libjs-leaflet (the world viewer's map library)"
apt_install libjs-leaflet
[ -f "$dir/leaflet.min.js" ] || { log "libjs-leaflet installed but $dir/leaflet.min.js is missing"; exit 1; }
