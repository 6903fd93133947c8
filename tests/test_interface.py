"""The kernel interface (microgpt/twin/interface.py): every backend supplies every name,
the model uses no other, and bind() copies every model function the model calls."""
import ast
import inspect

import pytest

from microgpt.twin import interface, model, numpy_kernels


def backends():
    import jit.kernels
    from gpu.kernels import CudaKernels      # numba's CUDA simulator where there is no GPU
    return {'numpy': numpy_kernels, 'jit': jit.kernels, 'cuda': CudaKernels('fp64')}


@pytest.mark.parametrize('name', ['numpy', 'jit', 'cuda'])
def test_every_backend_supplies_every_kernel(name):
    assert interface.missing(backends()[name]) == []


def attribute_uses(module, owner):
    """The attribute names used as `owner.NAME` in module's source."""
    tree = ast.parse(inspect.getsource(module))
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and ast.unparse(node.value) == owner}


def test_the_model_uses_no_kernel_the_interface_does_not_list():
    import microgpt.twin as twin
    used = attribute_uses(model, 'K') | attribute_uses(twin, 'self.kernels')
    assert used - set(interface.KERNELS) == set()
    assert set(interface.KERNELS) - used == set()          # and lists none it does not use


def test_bind_copies_every_model_function_a_model_function_calls():
    tree = ast.parse(inspect.getsource(model))
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for name in model.MODEL_FUNCTIONS:
        called = {node.func.id for node in ast.walk(functions[name])
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
        assert called & set(functions) <= set(model.MODEL_FUNCTIONS), name
    bound = model.bind(numpy_kernels)
    assert set(vars(bound)) == set(model.MODEL_FUNCTIONS)
    assert set(model.PARALLEL_FUNCTIONS) == {'rows_in_parts', 'weights_in_parts',
                                             'adam_in_parts'}
