"""Configs to objects: the layers and models a saved config names, rebuilt from data.

Only classes known here can be named: the public layers of the ``layers`` package and
the registered model classes (Sequential, Functional). A config is data, never code:
an unknown name is a ConfigError listing the names a file may use, and the arguments
go to the classes' own constructors, which check them.

    entry = layer_entry(layer)      # {"class_name": ..., "config": layer.get_config()}
    layer = deserialize(entry)      # a new layer (or model) from such an entry
"""

import layers as layers_package

_MODEL_CLASSES = {}


class ConfigError(ValueError):
    """A config names something unknown or is malformed."""


def register_model(name):
    """Class decorator: ``name`` (as Keras writes it: 'Sequential', 'Functional') may be
    named in configs."""

    def register(cls):
        _MODEL_CLASSES[name] = cls
        cls.config_name = name
        return cls

    return register


def layer_classes(custom_objects=None):
    """The classes a config may name: public layers (never the abstract base), models, and
    the user's own layer classes passed as ``custom_objects`` (name -> class)."""
    named = {
        name: obj
        for name in layers_package.__all__
        if isinstance(obj := getattr(layers_package, name), type)
        and issubclass(obj, layers_package.Layer)
        and obj is not layers_package.Layer
    }
    for name, obj in (custom_objects or {}).items():
        if not (isinstance(obj, type) and issubclass(obj, layers_package.Layer)):
            raise TypeError(f"custom_objects[{name!r}] must be a Layer subclass, got {obj!r}.")
    return {**named, **_MODEL_CLASSES, **(custom_objects or {})}


def class_name(layer):
    """The name a config gives the layer's class ('Functional' for an engine.Model)."""
    cls = type(layer)
    return cls.config_name if cls in _MODEL_CLASSES.values() else cls.__name__


def layer_entry(layer):
    """A layer (or model) as config data."""
    return {"class_name": class_name(layer), "config": layer.get_config()}


def known(what, name, classes, where=""):
    """classes[name], or a ConfigError listing the names that may be used."""
    if not isinstance(name, str) or name not in classes:
        raise ConfigError(
            f"{where}names an unknown {what} {name!r}; expected one of {', '.join(classes)}."
        )
    return classes[name]


def deserialize(entry, where="", custom_objects=None):
    """A new layer or model from {"class_name", "config"} (``where`` prefixes messages)."""
    classes = layer_classes(custom_objects)
    cls = known("layer", entry["class_name"], classes, where)
    config = entry["config"]
    if not isinstance(config, dict):
        raise TypeError(f"the config of layer {cls.__name__!r} is not a mapping")
    if cls is _MODEL_CLASSES.get("Sequential"):
        return _sequential(cls, config, where, custom_objects)
    if cls is _MODEL_CLASSES.get("Functional"):
        return _functional(cls, config, where, custom_objects)
    return cls.from_config(dict(config))


def _sequential(cls, config, where, custom_objects):
    stack = [deserialize(entry, where, custom_objects) for entry in config["layers"]]
    model = cls(stack, name=config.get("name"))
    if "input_shape" in config and not model.built:
        model.build(config["input_shape"])
    if config.get("trainable") is False:
        model.trainable = False
    return model


def _functional(cls, config, where, custom_objects):
    """Rebuild the graph: make each layer, then replay its calls once the tensors they
    take exist (a shared layer's later call may wait for layers listed after it)."""
    made, outputs, pending = {}, {}, []
    for entry in config["layers"]:
        layer = deserialize(entry, where, custom_objects)
        name = (
            entry["config"].get("name", layer.name) if isinstance(entry["config"], dict) else None
        )
        made[name] = layer
        if isinstance(layer, layers_package.InputLayer):
            outputs[(name, 0)] = [layer.output]
        for index, node in enumerate(entry.get("inbound_nodes", [])):
            pending.append((name, index, node))
    while pending:
        waiting = []
        for name, index, node in pending:
            refs = node["inputs"]
            if not all((ref[0], ref[1]) in outputs for ref in refs):
                waiting.append((name, index, node))
                continue
            tensors = [outputs[(ref[0], ref[1])][ref[2]] for ref in refs]
            result = made[name](tensors if node.get("as_list") else tensors[0])
            outputs[(name, index)] = result if isinstance(result, list) else [result]
        if len(waiting) == len(pending):
            names = sorted({name for name, _, _ in waiting})
            raise ConfigError(
                f"{where}the graph cannot be rebuilt: the calls of {names} wait on tensors "
                "no layer makes."
            )
        pending = waiting

    def tensors(refs, single):
        found = [outputs[(ref[0], ref[1])][ref[2]] for ref in refs]
        return found[0] if single and len(found) == 1 else found

    model = cls(
        tensors(config["input_layers"], config.get("single_input", True)),
        tensors(config["output_layers"], config.get("single_output", True)),
        name=config.get("name"),
    )
    if config.get("trainable") is False:
        model.trainable = False
    return model
