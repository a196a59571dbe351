#!/bin/sh
# The baseline a team writes by hand: copy the staged model into a registry folder with sha256 sums, copy it
# into MLServer's repository, load it, run one smoke inference, post one Atlas bulk record. Nothing more: no
# validation, no immutability or race checks, no lock, no record of a failed attempt, no settlement.
#   bare_deploy.sh STAGED REGISTRY_DIR MLSERVER_REPO MLSERVER_URL ATLAS_URL NAME VERSION
# Atlas credentials come from ATLAS_USERNAME / ATLAS_PASSWORD.
set -eu
src=$1 reg=$2 repo=$3 url=$4 atlas=$5 name=$6 version=$7
dest="$reg/$name/$version"
mkdir -p "$dest"
cp -r "$src/." "$dest/"
(cd "$dest" && find . -type f -exec sha256sum {} + > "../$version.sha256")
rm -rf "${repo:?}/$name"
mkdir -p "$repo/$name/$version"
cp "$dest"/executable/* "$repo/$name/$version/"
printf '{"name":"%s","implementation":"mlserver_sklearn.SKLearnModel","parameters":{"uri":"./model.joblib","version":"%s"}}' \
  "$name" "$version" > "$repo/$name/$version/model-settings.json"
curl -sS --fail-with-body -X POST "$url/v2/repository/models/$name/load" > /dev/null
curl -sS --fail-with-body -H 'Content-Type: application/json' --data-binary @"$src/examples/request.json" \
  "$url/v2/models/$name/versions/$version/infer" > /dev/null
now=$(($(date +%s) * 1000))
curl -sS --fail-with-body -u "$ATLAS_USERNAME:$ATLAS_PASSWORD" -H 'Content-Type: application/json' --data-binary @- \
  "$atlas/api/atlas/v2/entity/bulk" > /dev/null <<JSON
{"entities": [
 {"typeName": "ml_project", "guid": "-2", "attributes": {"qualifiedName": "bare/$name", "name": "$name"}},
 {"typeName": "ml_model_build", "guid": "-1", "attributes": {"qualifiedName": "bare/$name/$version", "name": "$name", "version": "$version"},
  "relationshipAttributes": {"project": {"typeName": "ml_project", "guid": "-2"}}},
 {"typeName": "ml_model_deployment", "attributes": {"qualifiedName": "bare/$name/$version/$url", "name": "$name",
  "createTime": $now, "deployedTime": $now, "status": "deployed", "cpuMillicores": 0},
  "relationshipAttributes": {"build": {"typeName": "ml_model_build", "guid": "-1"}}}
]}
JSON
