"""The dashboard's static files (HTML, CSS, ES modules), shipped as package data.

A Python package only so that a wheel or a container image carries the same pages as a source
checkout; the pages themselves know nothing but the HTTP API.
"""
