"""StreamFlow's local AWS: moto's server, a Docker-free Lambda executor, a local API
Gateway, an MLflow registry server, and a deploy step that reads ``template.yaml``."""
