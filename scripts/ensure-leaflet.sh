#!/usr/bin/env bash
# The world viewer's map library (GET /): Debian's libjs-leaflet, which the API serves from
# /usr/share/javascript/leaflet (VWE_VIEWER_LEAFLET_DIR) so the browser fetches nothing from the
# internet. Installs only when missing; prints nothing when it is there.
source "$(dirname "$0")/common.sh"
dir=${VWE_VIEWER_LEAFLET_DIR:-/usr/share/javascript/leaflet}
if [ ! -f "$dir/leaflet.min.js" ] || [ ! -f "$dir/leaflet.css" ]; then
  log "installing libjs-leaflet (the world viewer's map library)"
  apt_install libjs-leaflet
  [ -f "$dir/leaflet.min.js" ] || { log "libjs-leaflet installed but $dir/leaflet.min.js is missing"; exit 1; }
fi
# A copy in the build context, for the daemon image (Dockerfile: COPY .run/leaflet); the files
# the page loads only (no source maps or precompressed twins).
mkdir -p "$ROOT/.run/leaflet/images"
cp -u "$dir/leaflet.min.js" "$dir/leaflet.css" "$ROOT/.run/leaflet/"
cp -u "$dir"/images/*.png "$ROOT/.run/leaflet/images/"
