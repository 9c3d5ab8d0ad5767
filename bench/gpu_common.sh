# Sourced by bench/gpu_session.sh and bench/gpu_quality_session.sh on the lent GPU machine: the carried
# wheels installed where the image lacks them, Keras on JAX, a step() timestamp, and the machine's record.
mkdir -p "$OUT"
if [ -d .whl ] && ! python3 -c "import keras, soxr, soundfile" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
step() { echo "== $(date +%H:%M:%S) $*"; }

step "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi";
  python3 -c "import keras, jax; print('keras', keras.__version__, 'jax', jax.__version__, jax.devices())"; } | tee "$OUT/machine.txt"
