/*  dx_catalog: what the clouds offer, as data (dx_catalog.def): instance
    types with vCPUs and memory, AWS regions, Azure locations. */
#ifndef DX_CATALOG_H
#define DX_CATALOG_H

typedef struct {
    const char *provider;       /* "aws" or "azure" */
    const char *name;           /* "m5.xlarge", "Standard_DS2" */
    int vcpus;
    double memory_gib;
} dx_instance_type_t;

typedef struct {
    const char *name;           /* "centralus" */
    const char *display_name;   /* "Central US" */
} dx_location_t;

/*  The instance type of provider with this exact name, or NULL. */
const dx_instance_type_t *dx_catalog_instance (const char *provider, const char *name);

/*  1 if region is an AWS region name, else 0. */
int dx_catalog_aws_region (const char *region);

/*  The Azure location given by name ("centralus") or display name
    ("Central US"), both case-insensitive; NULL if unknown. */
const dx_location_t *dx_catalog_azure_location (const char *text);

/*  Hosts a group needs: max(ceil(cpus / vcpus), ceil(ram_gib / memory_gib)). */
long dx_catalog_hosts (const dx_instance_type_t *type, long cpus, long ram_gib);

#endif
