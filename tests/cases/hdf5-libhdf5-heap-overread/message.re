cannot read attribute 'model_config'|damaged or hostile HDF5 file \(the HDF5 library crashed
