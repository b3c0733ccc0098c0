"""Keras 3's model configs (a .keras archive's config.json) to ours and back.

Reading, a Keras layer entry {"class_name", "config", ...} becomes an entry our
engine.serialization rebuilds: the layer's Keras arguments are ours under the same names,
except what this module translates (initializers and regularizers as Keras objects,
InputLayer's batch_shape, dtype policies) and options at Keras's neutral value that xpcnn
does not have (a constraint of None, groups=1, ...), which are dropped. Anything else (a
layer xpcnn lacks, an option set to something xpcnn cannot do, custom or registered
objects, Lambda layers) is refused with a KerasConfigError naming it: a file is data,
never code. Writing goes the other way, so Keras's keras.models.load_model reads it.
"""

import inspect

import optim
from engine import backend, serialization, utils
from engine import losses as losses_module
from engine import metrics as metrics_module

# Keras options xpcnn does not have, at the values that make them do nothing.
NEUTRAL = {
    "kernel_constraint": None,
    "bias_constraint": None,
    "depthwise_constraint": None,
    "pointwise_constraint": None,
    "beta_constraint": None,
    "gamma_constraint": None,
    "activity_regularizer": None,
    "quantization_config": None,
    "lora_rank": None,
    "lora_alpha": None,
    "lora_enabled": False,
    "data_format": "channels_last",
    "dilation_rate": [1, 1],
    "groups": 1,
    "synchronized": False,
    "renorm": False,
    "renorm_clipping": None,
    "renorm_momentum": 0.99,
    "sparse": False,
    "ragged": False,
    "optional": False,
    "dtype": None,  # the data type: floatx() decides ours
    "max_value": None,  # ReLU's
    "negative_slope": 0.0,
    "threshold": 0.0,
    "axis": -1,  # Softmax's: ours is always the last axis
    "rms_scaling": False,
}

# Keras initializer classes and our names for them.
INITIALIZERS = {
    "GlorotUniform": "glorot_uniform",
    "GlorotNormal": "glorot_normal",
    "HeUniform": "he_uniform",
    "HeNormal": "he_normal",
    "LecunUniform": "lecun_uniform",
    "LecunNormal": "lecun_normal",
    "Zeros": "zeros",
    "Ones": "ones",
}


class KerasConfigError(serialization.ConfigError):
    """A Keras config names something xpcnn does not have, or is malformed."""


def _is_keras_object(value):
    return isinstance(value, dict) and "class_name" in value and "config" in value


def _from_keras_value(layer, key, value):
    """One argument's value, Keras's form to ours."""
    if key.endswith("_initializer") and _is_keras_object(value):
        name = INITIALIZERS.get(value["class_name"])
        if name is None:
            raise KerasConfigError(
                f"layer {layer!r} uses the initializer {value['class_name']!r}, which xpcnn "
                f"does not have (it has {', '.join(INITIALIZERS)})."
            )
        return name
    if key.endswith("_regularizer") and _is_keras_object(value):
        return {"class_name": value["class_name"], "config": value["config"]}
    if _is_keras_object(value):
        raise KerasConfigError(
            f"layer {layer!r} sets {key!r} to a Keras object {value['class_name']!r}, "
            "which xpcnn cannot read."
        )
    return value


def layer_from_keras(entry, classes):
    """Our {"class_name", "config"} for a Keras layer entry; checked against ``classes``."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise KerasConfigError(f"a layer entry is not a mapping with a config: {entry!r:.80}")
    class_name = entry.get("class_name")
    if entry.get("registered_name") not in (None, class_name, "Functional"):
        raise KerasConfigError(
            f"the file uses the custom object {entry['registered_name']!r}; xpcnn loads "
            "only Keras's own layers, never custom code."
        )
    if class_name in ("Sequential", "Functional", "Model"):
        return model_from_keras(entry, classes)
    cls = serialization.known("layer", class_name, classes, "the Keras file ")
    keras_config = entry["config"]
    name = keras_config.get("name", class_name)
    config = {}
    for key, value in keras_config.items():
        if key == "batch_shape" and class_name == "InputLayer":
            config["shape"] = list(value)[1:]
        elif key in NEUTRAL and key not in _accepted(cls):
            if value != NEUTRAL[key] and not (key == "dtype" or _same(value, NEUTRAL[key])):
                raise KerasConfigError(
                    f"layer {name!r} ({class_name}) sets {key}={value!r}, which xpcnn's "
                    f"{class_name} does not have."
                )
        elif key == "dtype":
            continue
        elif key not in _accepted(cls) and key not in ("shape",):
            raise KerasConfigError(
                f"layer {name!r} ({class_name}) sets the option {key}={value!r:.60}, which "
                f"xpcnn's {class_name} does not have."
            )
        else:
            config[key] = _from_keras_value(name, key, value)
    return {"class_name": class_name, "config": config}


def _same(a, b):
    return (list(a) if isinstance(a, (list, tuple)) else a) == (
        list(b) if isinstance(b, (list, tuple)) else b
    )


def _accepted(cls):
    """The constructor arguments a layer class takes (its own and Layer's)."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= set(inspect.signature(klass.__init__).parameters) - {"self", "kwargs"}
    return names


def _history(tensor):
    """[layer name, call index, output index] of a Keras '__keras_tensor__' entry."""
    if not (isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__"):
        raise KerasConfigError(f"a layer call takes {tensor!r:.60}, not a tensor of the graph.")
    history = tensor["config"]["keras_history"]
    return [str(history[0]), int(history[1]), int(history[2])]


def _refs(value):
    """(list of [name, call, output] references, whether the layer took a list)."""
    if isinstance(value, list) and value and isinstance(value[0], (list, tuple)):
        return [[str(v[0]), int(v[1]), int(v[2])] for v in value], True
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [[value[0], int(value[1]), int(value[2])]], False
    raise KerasConfigError(f"unreadable input/output layers {value!r:.80}.")


def model_from_keras(entry, classes):
    """Our entry for a Keras Sequential or Functional model entry."""
    config = entry["config"]
    if entry["class_name"] == "Sequential":
        layers = [layer_from_keras(e, classes) for e in config["layers"]]
        ours = {"name": config.get("name"), "layers": layers}
        if layers and layers[0]["class_name"] == "InputLayer":
            ours["layers"] = layers[1:]
            ours["input_shape"] = layers[0]["config"]["shape"]
        elif config.get("build_input_shape"):
            ours["input_shape"] = list(config["build_input_shape"])[1:]
        if config.get("trainable") is False:
            ours["trainable"] = False
        return {"class_name": "Sequential", "config": ours}
    layers = []
    for keras_layer in config["layers"]:
        ours = layer_from_keras(keras_layer, classes)
        ours["config"]["name"] = keras_layer.get("name", ours["config"].get("name"))
        ours["inbound_nodes"] = []
        for node in keras_layer.get("inbound_nodes", []):
            args = node["args"] if isinstance(node, dict) else node
            first = args[0]
            taken = first if isinstance(first, list) else [first]
            ours["inbound_nodes"].append(
                {"inputs": [_history(t) for t in taken], "as_list": isinstance(first, list)}
            )
        layers.append(ours)
    inputs, several_inputs = _refs(config["input_layers"])
    outputs, several_outputs = _refs(config["output_layers"])
    ours = {
        "name": config.get("name"),
        "layers": layers,
        "input_layers": inputs,
        "output_layers": outputs,
        "single_input": not several_inputs,
        "single_output": not several_outputs,
    }
    if config.get("trainable") is False:
        ours["trainable"] = False
    return {"class_name": "Functional", "config": ours}


# -- ours to Keras ------------------------------------------------------------------------


def _to_keras_value(key, value):
    if key.endswith("_regularizer") and isinstance(value, dict):
        return {"module": "keras.regularizers", "registered_name": None, **value}
    if isinstance(value, tuple):
        return list(value)
    return value


def layer_to_keras(layer):
    """The Keras entry of one of our layers (or models)."""
    entry = serialization.layer_entry(layer)
    class_name = entry["class_name"]
    if class_name in ("Sequential", "Functional"):
        return model_to_keras(layer)
    config = {}
    for key, value in entry["config"].items():
        if key == "input_shape":
            continue  # Keras's own InputLayer carries the shape
        if key == "shape" and class_name == "InputLayer":
            config["batch_shape"] = [None, *value]
            continue
        config[key] = _to_keras_value(key, value)
    config["dtype"] = backend.floatx()
    keras_entry = {
        "module": "keras.layers",
        "class_name": class_name,
        "config": config,
        "registered_name": None,
    }
    if layer.built and layer.input_shape is not None and class_name != "InputLayer":
        shape = layer.input_shape
        keras_entry["build_config"] = {
            "input_shape": [[None, *s] for s in shape]
            if isinstance(shape, list)
            else [None, *shape]
        }
    return keras_entry


def _keras_history(tensor, calls):
    return {
        "class_name": "__keras_tensor__",
        "config": {
            "shape": list(tensor.shape),
            "dtype": backend.floatx(),
            "keras_history": [tensor.node.layer.name, calls(tensor.node), tensor.index],
        },
    }


def model_to_keras(model):
    """The Keras entry of our Sequential or functional Model."""
    name = serialization.class_name(model)
    if name == "Sequential":
        inputs = [layer_to_keras(model.inputs[0].node.layer)] if model.built else []
        config = {
            "name": model.name,
            "trainable": model.trainable,
            "dtype": backend.floatx(),
            "layers": inputs + [layer_to_keras(layer) for layer in model.layers],
        }
        if model.built:
            config["build_input_shape"] = [None, *model.input_shape]
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": config,
            "registered_name": None,
            "build_config": {"input_shape": [None, *model.input_shape]},
        }
    in_model = {id(n) for n in model._nodes} | {id(t.node) for t in model.inputs}

    def calls(node):
        return [n for n in node.layer.inbound_nodes if id(n) in in_model].index(node)

    layers = []
    for layer in model.layers:
        entry = layer_to_keras(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = []
        for node in layer.inbound_nodes:
            if id(node) not in in_model or node.is_input:
                continue
            taken = [_keras_history(t, calls) for t in node.inputs]
            entry["inbound_nodes"].append(
                {"args": [taken if node.as_list else taken[0]], "kwargs": {}}
            )
        layers.append(entry)

    def refs(tensors, single):
        found = [[t.node.layer.name, calls(t.node), t.index] for t in tensors]
        return found[0] if single else found

    config = {
        "name": model.name,
        "trainable": model.trainable,
        "layers": layers,
        "input_layers": refs(model.inputs, model._single_input),
        "output_layers": refs(model.outputs, model._single_output),
    }
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": config,
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
    }


# -- compile configs -------------------------------------------------------------------------

# Keras optimizer options xpcnn's optimizers lack, at their neutral values.
OPTIMIZER_NEUTRAL = {
    "weight_decay": None,
    "clipnorm": None,
    "global_clipnorm": None,
    "clipvalue": None,
    "use_ema": False,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}
LOSS_NEUTRAL = {"reduction": "sum_over_batch_size", "ignore_class": None}
# Descriptive entries of Keras objects' configs, read by nothing here.
DESCRIPTIVE = {"name", "dtype", "ema_momentum"}


def _object_from_keras(what, spec, classes, neutral):
    """An optimizer, loss or metric from Keras's {"class_name", "config"} (or a name)."""
    if isinstance(spec, str) or spec is None:
        return spec
    if not _is_keras_object(spec):
        raise KerasConfigError(f"the {what} {spec!r:.80} is not a Keras object.")
    cls = serialization.known(what, spec["class_name"], classes, "the Keras file ")
    accepted, config = _accepted(cls), {}
    for key, value in spec["config"].items():
        if key == "learning_rate" and _is_keras_object(value):
            schedules = {cls.__name__: cls for cls in optim.schedules.SCHEDULES.values()}
            config[key] = _object_from_keras("learning-rate schedule", value, schedules, {})
        elif key in accepted:
            config[key] = value
        elif key in DESCRIPTIVE:
            continue
        elif key in neutral:
            if value != neutral[key]:
                raise KerasConfigError(
                    f"the {what} {spec['class_name']} sets {key}={value!r}, which xpcnn's "
                    f"{spec['class_name']} does not have."
                )
        else:
            raise KerasConfigError(
                f"the {what} {spec['class_name']} has the option {key!r}, which xpcnn's "
                f"{spec['class_name']} does not have."
            )
    return cls(**config)


def compile_from_keras(model, compile_config):
    """model.compile() with a Keras file's compile_config."""
    optimizers = {cls.__name__: cls for cls in optim.OPTIMIZERS.values()}
    losses = {cls.__name__: cls for cls in losses_module.LOSSES.values()}
    metrics = {cls.__name__: cls for cls in metrics_module.METRICS.values()}
    optimizer = _object_from_keras(
        "optimizer", compile_config["optimizer"], optimizers, OPTIMIZER_NEUTRAL
    )

    def each(value, classes, neutral, what):
        if isinstance(value, dict) and not _is_keras_object(value):
            return {k: each(v, classes, neutral, what) for k, v in value.items()}
        if isinstance(value, list):
            return [each(v, classes, neutral, what) for v in value]
        return _object_from_keras(what, value, classes, neutral)

    loss = each(compile_config.get("loss"), losses, LOSS_NEUTRAL, "loss")
    found_metrics = each(compile_config.get("metrics") or [], metrics, {}, "metric")
    if compile_config.get("weighted_metrics"):
        raise KerasConfigError("the file's weighted_metrics are not supported by xpcnn.")
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=found_metrics,
        loss_weights=compile_config.get("loss_weights"),
    )


def compile_to_keras(model):
    """Keras's compile_config for our compiled model."""
    optimizer = model.optimizer
    optimizer_config = {
        "name": utils.snake_case(type(optimizer).__name__),
        **optimizer.get_config(),
    }
    if isinstance(optimizer_config["learning_rate"], dict):  # a schedule
        optimizer_config["learning_rate"] = {
            "module": "keras.optimizers.schedules",
            **optimizer_config["learning_rate"],
            "registered_name": None,
        }
    optimizer_entry = {
        "module": "keras.optimizers",
        "class_name": type(optimizer).__name__,
        "config": optimizer_config,
        "registered_name": None,
    }

    def loss_entry(loss):
        if loss is None:
            return None
        return {
            "module": "keras.losses",
            "class_name": type(loss).__name__,
            "config": {"name": loss.name, "reduction": "sum_over_batch_size", **loss.get_config()},
            "registered_name": None,
        }

    compiled = model.compiled_loss
    entries = [loss_entry(loss) for loss in compiled.losses]
    per_output = [[m.name for m in made] for made in model.compiled_metrics.per_output]
    return {
        "optimizer": optimizer_entry,
        "loss": entries[0] if compiled.single else entries,
        "loss_weights": None if all(w == 1 for w in compiled.weights) else compiled.weights,
        "metrics": per_output[0] if compiled.single else per_output,
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": True,
    }
